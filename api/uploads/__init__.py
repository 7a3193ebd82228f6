"""Uploads: streamed request bodies, resumable (tus) uploads, and the signed tokens browsers upload with."""
