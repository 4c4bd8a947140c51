#include "litert_op.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "area_resize.h"
#include "interpolate.h"
#include "sample.h"

namespace nus {

bool LiteRtApi::Load(const std::string& path, std::string* error) {
  // RTLD_LOCAL: LiteRT's symbols stay out of the process's namespace (TensorFlow's
  // TFLite may be loaded too).
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    *error = "cannot load LiteRT's C API library " + path + ": " + dlerror();
    return false;
  }
  const std::pair<const char*, void**> functions[] = {
      {"LiteRtCreateEnvironment", reinterpret_cast<void**>(&CreateEnvironment)},
      {"LiteRtDestroyEnvironment", reinterpret_cast<void**>(&DestroyEnvironment)},
      {"LiteRtCreateModelFromBuffer", reinterpret_cast<void**>(&CreateModelFromBuffer)},
      {"LiteRtDestroyModel", reinterpret_cast<void**>(&DestroyModel)},
      {"LiteRtCreateOptions", reinterpret_cast<void**>(&CreateOptions)},
      {"LiteRtDestroyOptions", reinterpret_cast<void**>(&DestroyOptions)},
      {"LiteRtSetOptionsHardwareAccelerators",
       reinterpret_cast<void**>(&SetOptionsHardwareAccelerators)},
      {"LiteRtCreateOpaqueOptions", reinterpret_cast<void**>(&CreateOpaqueOptions)},
      {"LiteRtAddOpaqueOptions", reinterpret_cast<void**>(&AddOpaqueOptions)},
      {"LiteRtAddCustomOpKernelOption", reinterpret_cast<void**>(&AddCustomOpKernelOption)},
      {"LiteRtCreateCompiledModel", reinterpret_cast<void**>(&CreateCompiledModel)},
      {"LiteRtDestroyCompiledModel", reinterpret_cast<void**>(&DestroyCompiledModel)},
      {"LiteRtRunCompiledModel", reinterpret_cast<void**>(&RunCompiledModel)},
      {"LiteRtCompiledModelGetErrorMessages",
       reinterpret_cast<void**>(&CompiledModelGetErrorMessages)},
      {"LiteRtGetModelSignature", reinterpret_cast<void**>(&GetModelSignature)},
      {"LiteRtGetNumSignatureInputs", reinterpret_cast<void**>(&GetNumSignatureInputs)},
      {"LiteRtGetNumSignatureOutputs", reinterpret_cast<void**>(&GetNumSignatureOutputs)},
      {"LiteRtGetSignatureInputName", reinterpret_cast<void**>(&GetSignatureInputName)},
      {"LiteRtGetSignatureOutputName", reinterpret_cast<void**>(&GetSignatureOutputName)},
      {"LiteRtGetSignatureInputTensor", reinterpret_cast<void**>(&GetSignatureInputTensor)},
      {"LiteRtGetSignatureOutputTensor", reinterpret_cast<void**>(&GetSignatureOutputTensor)},
      {"LiteRtGetTensorTypeId", reinterpret_cast<void**>(&GetTensorTypeId)},
      {"LiteRtGetRankedTensorType", reinterpret_cast<void**>(&GetRankedTensorType)},
      {"LiteRtCreateTensorBufferFromHostMemory",
       reinterpret_cast<void**>(&CreateTensorBufferFromHostMemory)},
      {"LiteRtDestroyTensorBuffer", reinterpret_cast<void**>(&DestroyTensorBuffer)},
      {"LiteRtGetTensorBufferTensorType", reinterpret_cast<void**>(&GetTensorBufferTensorType)},
      {"LiteRtLockTensorBuffer", reinterpret_cast<void**>(&LockTensorBuffer)},
      {"LiteRtUnlockTensorBuffer", reinterpret_cast<void**>(&UnlockTensorBuffer)},
  };
  for (const auto& [name, slot] : functions) {
    *slot = dlsym(library, name);
    if (*slot == nullptr) {
      *error = path + " lacks " + name + ": not a LiteRT 2.x C API library";
      return false;
    }
  }
  return true;
}

// What one registered op kernel knows: the output size (from the node's custom
// options), its threads, and the first error (LiteRT ignores a kernel's status, so the
// runner reads it after each run).
struct OpState {
  enum Kind { kLabels, kValues, kArea, kSample };
  const LiteRtApi* api;
  Kind kind;
  int num_threads;
  int64_t height = 0, width = 0;
  std::string error;
};

namespace {

constexpr int64_t kAlignment = 64;  // LiteRT's host memory alignment

int64_t NumElements(const LiteRtLayout& layout) {
  int64_t n = 1;
  for (unsigned int k = 0; k < layout.rank; ++k) n *= layout.dimensions[k];
  return n;
}

std::string Shape(const LiteRtLayout& layout) {
  std::string text = "[";
  for (unsigned int k = 0; k < layout.rank; ++k) {
    text += (k ? ", " : "") + std::to_string(layout.dimensions[k]);
  }
  return text + "]";
}

const char* OpName(const OpState& state) {
  switch (state.kind) {
    case OpState::kLabels: return kLabelsOpName;
    case OpState::kValues: return kValuesOpName;
    case OpState::kArea: return kAreaOpName;
    case OpState::kSample: return kSampleOpName;
  }
  return "?";
}

// The numbers of inputs and outputs of an op.
bool HasArity(const OpState& state, size_t num_inputs, size_t num_outputs) {
  switch (state.kind) {
    case OpState::kArea: return num_inputs == 1 && num_outputs == 1;
    case OpState::kSample: return num_inputs == 2 && num_outputs == 2;
    default: return num_inputs == 2 && num_outputs == 1;
  }
}

LiteRtStatus Fail(OpState* state, const std::string& message) {
  if (state->error.empty()) state->error = std::string(OpName(*state)) + ": " + message;
  return kLiteRtErrorInvalidArgument;
}

LiteRtStatus OpInit(void* user_data, const void* init_data, size_t init_data_size) {
  auto* state = static_cast<OpState*>(user_data);
  int32_t size[2];
  if (init_data == nullptr || init_data_size != sizeof(size)) {
    return Fail(state, "its custom options must be the output size, two int32 (H, W)");
  }
  std::memcpy(size, init_data, sizeof(size));
  if (size[0] < 1 || size[1] < 1 || size[0] > kMaxCoordinate || size[1] > kMaxCoordinate) {
    return Fail(state, "output size " + std::to_string(size[0]) + "x" + std::to_string(size[1]) +
                           " outside 1.." + std::to_string(kMaxCoordinate));
  }
  if (state->height != 0 && (state->height != size[0] || state->width != size[1])) {
    return Fail(state, "a model may hold one output size per op");
  }
  state->height = size[0];
  state->width = size[1];
  return kLiteRtOk;
}

// NusSample(image [1, H, W, C], grid [1, n, m, 2]) -> (samples [1, S1, S2, C],
// locations [1, S1, S2, 2]), S1 x S2 the op's size.
LiteRtStatus SampleLayouts(OpState* state, const LiteRtLayout* inputs, LiteRtLayout* outputs) {
  const LiteRtLayout &image = inputs[0], &grid = inputs[1];
  if (image.rank != 4 || grid.rank != 4 || image.dimensions[0] != 1 || grid.dimensions[0] != 1 ||
      grid.dimensions[1] < 2 || grid.dimensions[2] < 2 || grid.dimensions[3] != 2 ||
      state->height < 2 || state->width < 2) {
    return Fail(state, "expects an image [1, H, W, C] and a grid [1, n, m, 2] (n, m >= 2), "
                       "sampled at least 2 x 2, got " + Shape(image) + " and " + Shape(grid));
  }
  outputs[0] = image;
  outputs[0].dimensions[1] = static_cast<int32_t>(state->height);
  outputs[0].dimensions[2] = static_cast<int32_t>(state->width);
  outputs[1] = outputs[0];
  outputs[1].dimensions[3] = 2;
  return kLiteRtOk;
}

LiteRtStatus OpGetOutputLayouts(void* user_data, size_t num_inputs,
                                const LiteRtLayout* input_layouts, size_t num_outputs,
                                LiteRtLayout* output_layouts) {
  auto* state = static_cast<OpState*>(user_data);
  if (!HasArity(*state, num_inputs, num_outputs)) {
    return Fail(state, "unexpected number of inputs or outputs");
  }
  if (state->kind == OpState::kSample) return SampleLayouts(state, input_layouts, output_layouts);
  if (state->kind == OpState::kArea) {
    const LiteRtLayout& image = input_layouts[0];
    if (image.rank != 4 || image.dimensions[0] != 1 || image.dimensions[1] % state->height ||
        image.dimensions[2] % state->width) {
      return Fail(state, "expects an image [1, H, W, C] with H, W multiples of the output "
                         "size, got " + Shape(image));
    }
    LiteRtLayout out = image;
    out.dimensions[1] = static_cast<int32_t>(state->height);
    out.dimensions[2] = static_cast<int32_t>(state->width);
    output_layouts[0] = out;
    return kLiteRtOk;
  }
  const LiteRtLayout& logits = input_layouts[0];
  const LiteRtLayout& locations = input_layouts[1];
  if (logits.rank != 4 || locations.rank != 4 || logits.dimensions[0] != 1 ||
      locations.dimensions[0] != 1 || locations.dimensions[1] != logits.dimensions[1] ||
      locations.dimensions[2] != logits.dimensions[2] || locations.dimensions[3] != 2 ||
      logits.dimensions[1] < 2 || logits.dimensions[2] < 2) {
    return Fail(state, "expects logits [1, S1, S2, C] and locations [1, S1, S2, 2] (S1, S2 "
                       ">= 2), got " + Shape(logits) + " and " + Shape(locations));
  }
  LiteRtLayout out{};
  out.rank = state->kind == OpState::kLabels ? 3 : 4;
  out.dimensions[0] = 1;
  out.dimensions[1] = static_cast<int32_t>(state->height);
  out.dimensions[2] = static_cast<int32_t>(state->width);
  out.dimensions[3] = logits.dimensions[3];
  output_layouts[0] = out;
  return kLiteRtOk;
}

// Locks `buffer` and checks its element type and element count.
LiteRtStatus Lock(OpState* state, LiteRtTensorBuffer buffer, int mode, int element_type,
                  int64_t num_elements, const char* what, void** data) {
  const LiteRtApi& api = *state->api;
  LiteRtRankedTensorType type;
  if (api.GetTensorBufferTensorType(buffer, &type) != kLiteRtOk ||
      type.element_type != element_type || NumElements(type.layout) != num_elements) {
    return Fail(state, std::string("unexpected type or shape of ") + what);
  }
  if (api.LockTensorBuffer(buffer, data, mode) != kLiteRtOk) {
    return Fail(state, std::string("cannot lock ") + what);
  }
  return kLiteRtOk;
}

LiteRtStatus RunArea(OpState* state, LiteRtTensorBuffer input, LiteRtTensorBuffer output) {
  const LiteRtApi& api = *state->api;
  LiteRtRankedTensorType type;
  if (api.GetTensorBufferTensorType(input, &type) != kLiteRtOk || type.layout.rank != 4) {
    return Fail(state, "cannot read the image's shape");
  }
  const int64_t height = type.layout.dimensions[1], width = type.layout.dimensions[2];
  const int64_t channels = type.layout.dimensions[3];
  void *image, *out;
  if (Lock(state, input, kLiteRtLockRead, kLiteRtUInt8, height * width * channels,
           "the image (uint8)", &image) != kLiteRtOk) {
    return kLiteRtErrorInvalidArgument;
  }
  LiteRtStatus status = Lock(state, output, kLiteRtLockWrite, kLiteRtFloat32,
                             state->height * state->width * channels, "the output", &out);
  if (status == kLiteRtOk) {
    AreaResize(static_cast<const uint8_t*>(image), height, width, channels,
               height / state->height, width / state->width, static_cast<float*>(out),
               state->num_threads);
    api.UnlockTensorBuffer(output);
  }
  api.UnlockTensorBuffer(input);
  return status;
}

LiteRtStatus RunSample(OpState* state, const LiteRtTensorBuffer* inputs,
                       const LiteRtTensorBuffer* outputs) {
  const LiteRtApi& api = *state->api;
  LiteRtRankedTensorType types[2];
  for (int k = 0; k < 2; ++k) {
    if (api.GetTensorBufferTensorType(inputs[k], &types[k]) != kLiteRtOk ||
        types[k].layout.rank != 4) {
      return Fail(state, "cannot read the shapes of the image and the grid");
    }
  }
  const int32_t* image_shape = types[0].layout.dimensions;
  const int32_t* grid_shape = types[1].layout.dimensions;
  const int64_t pixels = int64_t{image_shape[1]} * image_shape[2] * image_shape[3];
  const int64_t samples = state->height * state->width;
  const int image_type = types[0].element_type;
  if (image_type != kLiteRtUInt8 && image_type != kLiteRtFloat32) {
    return Fail(state, "the image must be uint8 or float32");
  }
  // Locked in turn; each unlocked again whatever follows.
  const struct {
    LiteRtTensorBuffer buffer;
    int mode, element_type;
    int64_t num_elements;
    const char* what;
  } tensors[4] = {
      {inputs[0], kLiteRtLockRead, image_type, pixels, "the image"},
      {inputs[1], kLiteRtLockRead, kLiteRtFloat32, int64_t{grid_shape[1]} * grid_shape[2] * 2,
       "the grid"},
      {outputs[0], kLiteRtLockWrite, kLiteRtFloat32, samples * image_shape[3], "the samples"},
      {outputs[1], kLiteRtLockWrite, kLiteRtFloat32, samples * 2, "the locations"},
  };
  void* data[4] = {};
  int locked = 0;
  LiteRtStatus status = kLiteRtOk;
  for (; locked < 4; ++locked) {
    const auto& t = tensors[locked];
    status = Lock(state, t.buffer, t.mode, t.element_type, t.num_elements, t.what, &data[locked]);
    if (status != kLiteRtOk) break;
  }
  const auto* grid = static_cast<const float*>(data[1]);
  if (status == kLiteRtOk &&
      !std::all_of(grid, grid + tensors[1].num_elements, [](float v) { return std::isfinite(v); })) {
    status = Fail(state, "the grid must be finite (a NaN or infinity would index outside "
                         "the image)");
  }
  if (status == kLiteRtOk) {
    auto* sampled = static_cast<float*>(data[2]);
    auto* locations = static_cast<float*>(data[3]);
    if (image_type == kLiteRtUInt8) {
      SampleNearest(static_cast<const uint8_t*>(data[0]), image_shape[1], image_shape[2],
                    image_shape[3], grid, grid_shape[1], grid_shape[2], state->height,
                    state->width, locations, sampled);
    } else {
      SampleNearest(static_cast<const float*>(data[0]), image_shape[1], image_shape[2],
                    image_shape[3], grid, grid_shape[1], grid_shape[2], state->height,
                    state->width, locations, sampled);
    }
  }
  for (int k = 0; k < locked; ++k) api.UnlockTensorBuffer(tensors[k].buffer);
  return status;
}

LiteRtStatus OpRun(void* user_data, size_t num_inputs, const LiteRtTensorBuffer* inputs,
                   size_t num_outputs, LiteRtTensorBuffer* outputs) {
  auto* state = static_cast<OpState*>(user_data);
  const LiteRtApi& api = *state->api;
  if (!HasArity(*state, num_inputs, num_outputs)) {
    return Fail(state, "unexpected number of inputs or outputs");
  }
  if (state->kind == OpState::kArea) return RunArea(state, inputs[0], outputs[0]);
  if (state->kind == OpState::kSample) return RunSample(state, inputs, outputs);
  LiteRtRankedTensorType logits_type;
  if (api.GetTensorBufferTensorType(inputs[0], &logits_type) != kLiteRtOk ||
      logits_type.layout.rank != 4) {
    return Fail(state, "cannot read the logits' shape");
  }
  const int64_t rows = logits_type.layout.dimensions[1], cols = logits_type.layout.dimensions[2];
  const int64_t channels = logits_type.layout.dimensions[3];
  const int64_t height = state->height, width = state->width;
  void *logits, *locations, *out;
  if (Lock(state, inputs[0], kLiteRtLockRead, kLiteRtFloat32, rows * cols * channels, "logits",
           &logits) != kLiteRtOk) {
    return kLiteRtErrorInvalidArgument;
  }
  LiteRtStatus status = Lock(state, inputs[1], kLiteRtLockRead, kLiteRtFloat32, rows * cols * 2,
                             "locations", &locations);
  if (status == kLiteRtOk) {
    const bool labels = state->kind == OpState::kLabels;
    status = Lock(state, outputs[0], kLiteRtLockWrite, labels ? kLiteRtInt32 : kLiteRtFloat32,
                  height * width * (labels ? 1 : channels), "the output", &out);
    if (status == kLiteRtOk) {
      const std::vector<double> points = PixelPositions(static_cast<const float*>(locations),
                                                        rows * cols, height, width);
      bool in_range = true;
      for (double p : points) in_range = in_range && std::fabs(p) < kMaxCoordinate;
      if (!in_range) {
        status = Fail(state, "locations must be finite, within +-" +
                                 std::to_string(kMaxCoordinate) + " pixels");
      } else {
        const SampleGrid grid{static_cast<const float*>(logits), points.data(), rows, cols,
                              channels};
        if (labels) {
          InterpolateLabels(grid, height, width, static_cast<int32_t*>(out), state->num_threads,
                            kMinBandValues);
        } else {
          InterpolateValues(grid, height, width, static_cast<float*>(out), state->num_threads,
                            kMinBandValues);
        }
      }
      api.UnlockTensorBuffer(outputs[0]);
    }
    api.UnlockTensorBuffer(inputs[1]);
  }
  api.UnlockTensorBuffer(inputs[0]);
  return status;
}

LiteRtStatus OpDestroy(void*) { return kLiteRtOk; }

constexpr LiteRtCustomOpKernel kKernel = {OpInit, OpGetOutputLayouts, OpRun, OpDestroy};

// XNNPACK's threads, as LiteRT's CPU options spell them (identifier and TOML payload).
bool AddCpuOptions(const LiteRtApi& api, LiteRtOptions options, int num_threads) {
  const std::string toml = "num_threads = " + std::to_string(num_threads) + "\n";
  char* payload = static_cast<char*>(std::malloc(toml.size() + 1));
  std::memcpy(payload, toml.c_str(), toml.size() + 1);
  LiteRtOpaqueOptions cpu;
  if (api.CreateOpaqueOptions("xnnpack", payload, std::free, &cpu) != kLiteRtOk) {
    std::free(payload);
    return false;
  }
  return api.AddOpaqueOptions(options, cpu) == kLiteRtOk;  // takes ownership
}

}  // namespace

std::unique_ptr<Runner> Runner::Create(const std::string& library, std::string model,
                                       int num_threads, std::string* error) {
  std::unique_ptr<Runner> runner(new Runner());
  runner->model_data_ = std::move(model);
  if (!runner->Init(library, num_threads, error)) return nullptr;
  return runner;
}

bool Runner::Init(const std::string& library, int num_threads, std::string* error) {
  if (!api_.Load(library, error)) return false;
  if (api_.CreateEnvironment(0, nullptr, &environment_) != kLiteRtOk) {
    *error = "LiteRT could not create its environment";
    return false;
  }
  if (api_.CreateModelFromBuffer(environment_, model_data_.data(), model_data_.size(),
                                 &model_) != kLiteRtOk) {
    *error = "LiteRT could not read the model (not a .tflite flatbuffer?)";
    return false;
  }
  for (OpState::Kind kind :
       {OpState::kLabels, OpState::kValues, OpState::kArea, OpState::kSample}) {
    ops_.emplace_back(new OpState{&api_, kind, num_threads, 0, 0, ""});
  }
  LiteRtOptions options;
  if (api_.CreateOptions(&options) != kLiteRtOk) {
    *error = "LiteRT could not create compilation options";
    return false;
  }
  bool configured =
      api_.SetOptionsHardwareAccelerators(options, kLiteRtHwAcceleratorCpu) == kLiteRtOk &&
      AddCpuOptions(api_, options, num_threads);
  for (const std::unique_ptr<OpState>& op : ops_) {
    configured = configured && api_.AddCustomOpKernelOption(options, OpName(*op), kOpVersion,
                                                            &kKernel, op.get()) == kLiteRtOk;
  }
  const bool compiled =
      configured && api_.CreateCompiledModel(environment_, model_, options, &compiled_) == kLiteRtOk;
  api_.DestroyOptions(options);
  if (!compiled) {
    *error = configured ? "LiteRT could not compile the model" : "LiteRT rejected the options";
    for (const std::unique_ptr<OpState>& op : ops_) {
      if (!op->error.empty()) *error += ": " + op->error;
    }
    return false;
  }
  for (const std::unique_ptr<OpState>& op : ops_) {
    if (!op->error.empty()) {
      *error = op->error;
      return false;
    }
  }
  LiteRtSignature signature;
  if (api_.GetModelSignature(model_, 0, &signature) != kLiteRtOk) {
    *error = "the model has no signature";
    return false;
  }
  return MakeTensors(signature, true, error) && MakeTensors(signature, false, error);
}

bool Runner::MakeTensors(LiteRtSignature signature, bool inputs, std::string* error) {
  size_t count;
  if ((inputs ? api_.GetNumSignatureInputs : api_.GetNumSignatureOutputs)(signature, &count) !=
      kLiteRtOk) {
    *error = "cannot read the signature";
    return false;
  }
  std::vector<RunnerTensor>& tensors = inputs ? inputs_ : outputs_;
  tensors.resize(count);
  for (size_t k = 0; k < count; ++k) {
    RunnerTensor& tensor = tensors[k];
    const char* name;
    LiteRtTensor handle;
    LiteRtRankedTensorType type;
    int type_id;
    if ((inputs ? api_.GetSignatureInputName : api_.GetSignatureOutputName)(signature, k, &name) !=
            kLiteRtOk ||
        (inputs ? api_.GetSignatureInputTensor : api_.GetSignatureOutputTensor)(
            signature, name, &handle) != kLiteRtOk ||
        api_.GetTensorTypeId(handle, &type_id) != kLiteRtOk ||
        type_id != kLiteRtRankedTensorTypeId ||
        api_.GetRankedTensorType(handle, &type) != kLiteRtOk) {
      *error = "cannot read the signature's tensors (a ranked type each)";
      return false;
    }
    tensor.name = name;
    tensor.element_type = type.element_type;
    size_t element_bytes;
    switch (type.element_type) {
      case kLiteRtUInt8: element_bytes = 1; break;
      case kLiteRtFloat32:
      case kLiteRtInt32: element_bytes = 4; break;
      default:
        *error = "tensor " + tensor.name + " has a type other than uint8, int32, float32";
        return false;
    }
    for (unsigned int d = 0; d < type.layout.rank; ++d) {
      if (type.layout.dimensions[d] < 0) {
        *error = "tensor " + tensor.name + " has a dynamic shape";
        return false;
      }
      tensor.shape.push_back(type.layout.dimensions[d]);
    }
    tensor.bytes = element_bytes * NumElements(type.layout);
    const size_t allocated = (tensor.bytes + kAlignment - 1) / kAlignment * kAlignment;
    tensor.data = std::aligned_alloc(kAlignment, allocated == 0 ? kAlignment : allocated);
    if (tensor.data == nullptr ||
        api_.CreateTensorBufferFromHostMemory(&type, tensor.data, tensor.bytes, nullptr,
                                              &tensor.buffer) != kLiteRtOk) {
      *error = "cannot allocate tensor " + tensor.name;
      return false;
    }
  }
  return true;
}

bool Runner::Run(std::string* error) {
  std::vector<LiteRtTensorBuffer> inputs, outputs;
  for (RunnerTensor& tensor : inputs_) inputs.push_back(tensor.buffer);
  for (RunnerTensor& tensor : outputs_) outputs.push_back(tensor.buffer);
  const LiteRtStatus status = api_.RunCompiledModel(compiled_, 0, inputs.size(), inputs.data(),
                                                    outputs.size(), outputs.data());
  for (const std::unique_ptr<OpState>& op : ops_) {
    if (!op->error.empty()) {
      *error = op->error;
      op->error.clear();
      return false;
    }
  }
  if (status != kLiteRtOk) {
    *error = "LiteRT failed to run the model (status " + std::to_string(status) + ")";
    char* messages = nullptr;
    if (api_.CompiledModelGetErrorMessages(compiled_, &messages) == kLiteRtOk && messages) {
      *error += std::string(": ") + messages;
      std::free(messages);
    }
    return false;
  }
  return true;
}

Runner::~Runner() {
  for (std::vector<RunnerTensor>* tensors : {&inputs_, &outputs_}) {
    for (RunnerTensor& tensor : *tensors) {
      if (tensor.buffer != nullptr) api_.DestroyTensorBuffer(tensor.buffer);
      std::free(tensor.data);
    }
  }
  if (compiled_ != nullptr) api_.DestroyCompiledModel(compiled_);
  if (model_ != nullptr) api_.DestroyModel(model_);
  if (environment_ != nullptr) api_.DestroyEnvironment(environment_);
}

}  // namespace nus
