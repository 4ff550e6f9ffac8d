"""The media plane (DESIGN §5): the backend interface and the embedded aiortc backend."""
