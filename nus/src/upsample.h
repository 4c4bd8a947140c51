// Labels of logits on the uniform grid: the bilinear resize (corners aligned, as DeepLab
// resizes) of S1 x S2 x C logits to H x W and the argmax over channels, in one pass
// without the H x W x C image: the uniform pipeline's last stage, compiled as the NUS
// one is (nus/src/interpolate.cc).
#ifndef NUS_SRC_UPSAMPLE_H_
#define NUS_SRC_UPSAMPLE_H_

#include <cstdint>

namespace nus {

// labels [height, width] of values [rows, cols, channels] (rows, cols >= 1); rows of the
// output split into up to num_threads bands.
void UpsampleLabels(const float* values, int64_t rows, int64_t cols, int64_t channels,
                    int64_t height, int64_t width, int32_t* labels, int num_threads);

}  // namespace nus

#endif  // NUS_SRC_UPSAMPLE_H_
