"""Body tracking: MediaPipe pose for several visitors, turned into signals."""
