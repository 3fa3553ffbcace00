// Loads the credit-default classifier that Activity 6 traced to TorchScript and prints its
// prediction for one client: the book's example unless 22 comma-separated features are given.
//
// usage: predict MODEL.pt [f1,f2,...,f22]
//
// Output (one "name: values" line each, so a test can compare it with Python):
//   log_probabilities: <no default> <default>
//   probabilities: <no default> <default>
//   predicted_class: 0|1 (no default|default)

#include <torch/script.h>

#include <array>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

// The client of the book's Activity 6: 22 features, already min-max scaled.
constexpr std::array<float, 22> kBookExample = {
    0.0606f, 0.5000f, 0.3333f, 0.4828f, 0.4000f, 0.4000f, 0.4000f, 0.4000f, 0.4000f, 0.4000f, 0.1651f,
    0.0869f, 0.0980f, 0.1825f, 0.1054f, 0.2807f, 0.0016f, 0.0000f, 0.0033f, 0.0027f, 0.0031f, 0.0021f};

constexpr std::array<const char*, 2> kClassNames = {"no default", "default"};

// Parses "0.1,0.2,..." into floats; throws std::invalid_argument on anything else.
std::vector<float> parse_features(const std::string& text) {
    std::vector<float> values;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ',')) {
        std::size_t used = 0;
        values.push_back(std::stof(item, &used));
        if (used != item.size()) throw std::invalid_argument("not a number: '" + item + "'");
    }
    return values;
}

void print_row(const char* name, const torch::Tensor& row) {
    std::cout << name << ":";
    for (int64_t i = 0; i < row.size(0); ++i) std::cout << ' ' << row[i].item<float>();
    std::cout << '\n';
}

}  // namespace

int main(int argc, char* argv[]) {
    if (argc < 2 || argc > 3) {
        std::cerr << "usage: " << argv[0] << " MODEL.pt [f1,f2,...,f22]\n"
                  << "MODEL.pt is the TorchScript file Activity 6 writes (outputs/ch03/traced_model.pt).\n";
        return 2;
    }

    std::vector<float> features(kBookExample.begin(), kBookExample.end());
    if (argc == 3) {
        try {
            features = parse_features(argv[2]);
        } catch (const std::exception& err) {
            std::cerr << "error: could not read the features (" << err.what() << ")\n";
            return 2;
        }
        if (features.size() != kBookExample.size()) {
            std::cerr << "error: expected " << kBookExample.size() << " comma-separated features, got "
                      << features.size() << '\n';
            return 2;
        }
    }

    torch::jit::Module model;
    try {
        model = torch::jit::load(argv[1]);
    } catch (const c10::Error& err) {
        std::cerr << "error: could not load a TorchScript model from " << argv[1] << ":\n"
                  << err.what_without_backtrace() << '\n';
        return 1;
    }
    model.eval();                // dropout off (the traced graph was recorded in eval mode anyway)
    torch::NoGradGuard no_grad;  // inference only: no autograd bookkeeping

    const auto count = static_cast<int64_t>(features.size());
    torch::Tensor input = torch::from_blob(features.data(), {1, count}, torch::kFloat32).clone();
    torch::Tensor log_probabilities = model.forward({input}).toTensor();
    if (log_probabilities.dim() != 2 || log_probabilities.size(0) != 1) {
        std::cerr << "error: expected an output of shape (1, classes), got " << log_probabilities.sizes() << '\n';
        return 1;
    }

    torch::Tensor row = log_probabilities[0];
    const auto predicted = row.argmax().item<int64_t>();
    std::cout << std::setprecision(9);
    print_row("log_probabilities", row);
    print_row("probabilities", row.exp());
    std::cout << "predicted_class: " << predicted;
    if (predicted >= 0 && predicted < static_cast<int64_t>(kClassNames.size())) {
        std::cout << " (" << kClassNames[predicted] << ')';
    }
    std::cout << '\n';
    return EXIT_SUCCESS;
}
