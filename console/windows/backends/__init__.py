"""Window store backends: each module exposes a class named ``WindowStore``."""
