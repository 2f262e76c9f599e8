"""The model catalog: the SE block, the argument grammar, the registry, SE onto any CNN, the networks."""
