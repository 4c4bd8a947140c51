// The part of LiteRT's C API (libLiteRt.so, shipped in the ai-edge-litert wheel) that
// the NUS custom op and its runner use, declared here from the API's documented types
// (google-ai-edge/LiteRT, litert/c/) so that building needs no LiteRT headers. The
// functions are resolved at run time from the library (LiteRtApi::Load), so the
// extension loads without LiteRT and says clearly when the library is missing.
//
// The struct layouts are those of LiteRT 2.x on 64-bit targets; the static_asserts pin
// the sizes the library was built with.
#ifndef NUS_SRC_LITERT_API_H_
#define NUS_SRC_LITERT_API_H_

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" {

typedef int LiteRtStatus;  // 0: ok
inline constexpr LiteRtStatus kLiteRtOk = 0;
inline constexpr LiteRtStatus kLiteRtErrorInvalidArgument = 1;
inline constexpr LiteRtStatus kLiteRtErrorRuntimeFailure = 3;

typedef struct LiteRtEnvironmentT* LiteRtEnvironment;
typedef struct LiteRtModelT* LiteRtModel;
typedef struct LiteRtOptionsT* LiteRtOptions;
typedef struct LiteRtOpaqueOptionsT* LiteRtOpaqueOptions;
typedef struct LiteRtCompiledModelT* LiteRtCompiledModel;
typedef struct LiteRtTensorBufferT* LiteRtTensorBuffer;
typedef struct LiteRtTensorBufferRequirementsT* LiteRtTensorBufferRequirements;
typedef struct LiteRtSignatureT* LiteRtSignature;
typedef struct LiteRtTensorT* LiteRtTensor;

inline constexpr int kLiteRtMaxRank = 8;

typedef struct {
  unsigned int rank : 7;
  unsigned int has_strides : 1;
  int32_t dimensions[kLiteRtMaxRank];
  uint32_t strides[kLiteRtMaxRank];
} LiteRtLayout;
static_assert(sizeof(LiteRtLayout) == 68, "LiteRtLayout: 4 + 8 * 4 + 8 * 4 bytes");

// Element types (TfLiteType codes).
inline constexpr int kLiteRtFloat32 = 1;
inline constexpr int kLiteRtInt32 = 2;
inline constexpr int kLiteRtUInt8 = 3;

typedef struct {
  int element_type;
  LiteRtLayout layout;
} LiteRtRankedTensorType;
static_assert(sizeof(LiteRtRankedTensorType) == 72, "LiteRtRankedTensorType: 4 + 68 bytes");

typedef struct {
  LiteRtStatus (*Init)(void* user_data, const void* init_data, size_t init_data_size);
  LiteRtStatus (*GetOutputLayouts)(void* user_data, size_t num_inputs,
                                   const LiteRtLayout* input_layouts, size_t num_outputs,
                                   LiteRtLayout* output_layouts);
  LiteRtStatus (*Run)(void* user_data, size_t num_inputs, const LiteRtTensorBuffer* inputs,
                      size_t num_outputs, LiteRtTensorBuffer* outputs);
  LiteRtStatus (*Destroy)(void* user_data);
} LiteRtCustomOpKernel;

inline constexpr int kLiteRtHwAcceleratorCpu = 1;
inline constexpr int kLiteRtLockRead = 0;
inline constexpr int kLiteRtLockWrite = 1;
inline constexpr int kLiteRtTensorBufferTypeHostMemory = 1;
inline constexpr int kLiteRtRankedTensorTypeId = 0;

typedef void (*LiteRtHostMemoryDeallocator)(void* addr);

}  // extern "C"

namespace nus {

// The C API functions, resolved from libLiteRt.so.
struct LiteRtApi {
  LiteRtStatus (*CreateEnvironment)(int num_options, const void* options, LiteRtEnvironment*);
  void (*DestroyEnvironment)(LiteRtEnvironment);
  LiteRtStatus (*CreateModelFromBuffer)(LiteRtEnvironment, const void* data, size_t size,
                                        LiteRtModel*);
  void (*DestroyModel)(LiteRtModel);
  LiteRtStatus (*CreateOptions)(LiteRtOptions*);
  void (*DestroyOptions)(LiteRtOptions);
  LiteRtStatus (*SetOptionsHardwareAccelerators)(LiteRtOptions, int accelerators);
  LiteRtStatus (*CreateOpaqueOptions)(const char* identifier, void* payload,
                                      void (*destructor)(void*), LiteRtOpaqueOptions*);
  LiteRtStatus (*AddOpaqueOptions)(LiteRtOptions, LiteRtOpaqueOptions);
  LiteRtStatus (*AddCustomOpKernelOption)(LiteRtOptions, const char* name, int version,
                                          const LiteRtCustomOpKernel* kernel, void* user_data);
  LiteRtStatus (*CreateCompiledModel)(LiteRtEnvironment, LiteRtModel, LiteRtOptions,
                                      LiteRtCompiledModel*);
  void (*DestroyCompiledModel)(LiteRtCompiledModel);
  LiteRtStatus (*RunCompiledModel)(LiteRtCompiledModel, size_t signature_index,
                                   size_t num_inputs, LiteRtTensorBuffer* inputs,
                                   size_t num_outputs, LiteRtTensorBuffer* outputs);
  LiteRtStatus (*CompiledModelGetErrorMessages)(LiteRtCompiledModel, char** messages);
  LiteRtStatus (*GetModelSignature)(LiteRtModel, size_t index, LiteRtSignature*);
  LiteRtStatus (*GetNumSignatureInputs)(LiteRtSignature, size_t*);
  LiteRtStatus (*GetNumSignatureOutputs)(LiteRtSignature, size_t*);
  LiteRtStatus (*GetSignatureInputName)(LiteRtSignature, size_t index, const char** name);
  LiteRtStatus (*GetSignatureOutputName)(LiteRtSignature, size_t index, const char** name);
  LiteRtStatus (*GetSignatureInputTensor)(LiteRtSignature, const char* name, LiteRtTensor*);
  LiteRtStatus (*GetSignatureOutputTensor)(LiteRtSignature, const char* name, LiteRtTensor*);
  LiteRtStatus (*GetTensorTypeId)(LiteRtTensor, int* type_id);
  LiteRtStatus (*GetRankedTensorType)(LiteRtTensor, LiteRtRankedTensorType*);
  LiteRtStatus (*CreateTensorBufferFromHostMemory)(const LiteRtRankedTensorType*, void* data,
                                                   size_t size, LiteRtHostMemoryDeallocator,
                                                   LiteRtTensorBuffer*);
  void (*DestroyTensorBuffer)(LiteRtTensorBuffer);
  LiteRtStatus (*GetTensorBufferTensorType)(LiteRtTensorBuffer, LiteRtRankedTensorType*);
  LiteRtStatus (*LockTensorBuffer)(LiteRtTensorBuffer, void** data, int mode);
  LiteRtStatus (*UnlockTensorBuffer)(LiteRtTensorBuffer);

  // Resolves every function from the library at `path`; false with `error` set when
  // the library or a function is missing.
  bool Load(const std::string& path, std::string* error);
};

}  // namespace nus

#endif  // NUS_SRC_LITERT_API_H_
