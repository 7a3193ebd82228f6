"""The ML core, shared by serving and training, with no web framework (layers: docs/architecture.md):

- `i3d/` the network, its weights, its builds (SavedModel, OpenVINO IRs, int8) and the accuracy rule they pass;
- `runtimes/` I3D behind one interface, one module per runtime, and the factory that opens one;
- `recognition/` a video or a live stream -> ranked actions: windows, the shared inference thread, heads;
- `training/` labelled videos -> cached features -> a trained LSTM head;
- `evaluation/` faster paths held to the accuracy rule on real clips (window logits, the int8 verdict);
- `video.py`, `containers.py`, `labels.py`, `paths.py`, `hardware.py`, `tensorflow_env.py` what all of them
  read; `__main__.py` the CLI.
"""
