"""Export a trained Keras model to a self-describing, verified ONNX file."""
