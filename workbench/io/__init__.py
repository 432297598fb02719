"""Floor 1: the ONLY place untrusted bytes are decoded (images, weights), always with limits."""
