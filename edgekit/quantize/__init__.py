"""int8: ONNX Runtime (ort) and OpenVINO (openvino) quantization, calibration runs, the int8 graph
checks, and the planner that picks a plan (plan/)."""
