"""Faster paths held to the accuracy rule (`models.i3d.accuracy`) on real clips: window logits through any
runtime and extraction, the float32 TensorFlow reference they are compared with (cached), and the int8
model's verdict for this kind of CPU."""
