// The NUS interpolation as LiteRT custom ops, and a runner of .tflite files that use
// them, over LiteRT's C API (compiled models; the rest of the graph on XNNPACK).
//
// Ops (version 1), inputs and outputs batch 1:
//   NusInterpolateLabels(logits [1, S1, S2, C] float32, locations [1, S1, S2, 2] float32)
//       -> labels [1, H, W] int32
//   NusInterpolate(the same inputs) -> logits [1, H, W, C] float32
//   NusAreaResize(image [1, H, W, C] uint8) -> [1, h, w, C] float32
//       block means (nus/src/area_resize.cc), h and w dividing H and W: the aux net's
//       input read straight from the uint8 image
//   NusSample(image [1, H, W, C] uint8 or float32, grid [1, n, m, 2] float32)
//       -> (samples [1, S1, S2, C] float32, locations [1, S1, S2, 2] float32)
//       nus.sampling.sample's nearest sampling (nus/src/sample.cc), written by the
//       converter from nus.sampling.sample_with_op
// locations are (y, x) in [0, 1] as nus/ samples them; the custom options hold the
// output size, two little-endian int32 (H, W) / (h, w) / (S1, S2). The interpolation
// kernel is nus/src/interpolate.cc, so the labels equal
// nus.interpolation.interpolate_labels' on the same inputs.
#ifndef NUS_SRC_LITERT_OP_H_
#define NUS_SRC_LITERT_OP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "litert_api.h"

namespace nus {

inline constexpr char kLabelsOpName[] = "NusInterpolateLabels";
inline constexpr char kValuesOpName[] = "NusInterpolate";
inline constexpr char kAreaOpName[] = "NusAreaResize";
inline constexpr char kSampleOpName[] = "NusSample";
inline constexpr int kOpVersion = 1;

// One input or output of a compiled model's first signature, in host memory owned by
// the runner (aligned as LiteRT requires).
struct RunnerTensor {
  std::string name;
  int element_type;  // kLiteRtFloat32, kLiteRtInt32, kLiteRtUInt8, ...
  std::vector<int64_t> shape;
  void* data = nullptr;
  size_t bytes = 0;
  LiteRtTensorBuffer buffer = nullptr;
};

struct OpState;

// A .tflite compiled for the CPU with the NUS ops registered.
class Runner {
 public:
  // `library`: path of libLiteRt.so; `model`: the .tflite bytes. Returns null with
  // `error` set on failure.
  static std::unique_ptr<Runner> Create(const std::string& library, std::string model,
                                        int num_threads, std::string* error);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  std::vector<RunnerTensor>& inputs() { return inputs_; }
  std::vector<RunnerTensor>& outputs() { return outputs_; }
  // Runs the model on the data in inputs(), writing outputs(); false with `error` set on
  // failure (a failing custom op included: LiteRT ignores a kernel's status).
  bool Run(std::string* error);

 private:
  Runner() = default;
  bool Init(const std::string& library, int num_threads, std::string* error);
  bool MakeTensors(LiteRtSignature signature, bool inputs, std::string* error);

  LiteRtApi api_{};
  std::string model_data_;
  LiteRtEnvironment environment_ = nullptr;
  LiteRtModel model_ = nullptr;
  LiteRtCompiledModel compiled_ = nullptr;
  std::vector<std::unique_ptr<OpState>> ops_;  // one per op name
  std::vector<RunnerTensor> inputs_, outputs_;
};

}  // namespace nus

#endif  // NUS_SRC_LITERT_OP_H_
