"""Small pieces both services use; nothing here imports a web framework or TensorFlow."""
