"""The release flow, one module per step; each step is a plain function over explicit inputs."""
