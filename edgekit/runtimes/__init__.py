"""Running models: ONNX Runtime / OpenVINO sessions, logit comparison, the standalone board runner,
emulated boards (emulation/) and boards over SSH (remote/)."""
