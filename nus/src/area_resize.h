// Block means of an image: the aux net's input (nus.aux_net.net_input, an area resize by
// integer factors) computed from the image as it comes, in one pass over it.
#ifndef NUS_SRC_AREA_RESIZE_H_
#define NUS_SRC_AREA_RESIZE_H_

#include <cstdint>

namespace nus {

// out [height / factor_y, width / factor_x, channels] = the mean of each factor_y x
// factor_x block of image [height, width, channels] (height, width multiples of the
// factors). uint8 pixels are summed exactly, so for power-of-two factors the means equal
// TensorFlow's average pool of the float image bit for bit. Output rows split into up to
// num_threads bands.
void AreaResize(const uint8_t* image, int64_t height, int64_t width, int64_t channels,
                int64_t factor_y, int64_t factor_x, float* out, int num_threads);

}  // namespace nus

#endif  // NUS_SRC_AREA_RESIZE_H_
