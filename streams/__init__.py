"""The stream contract: topic names, keys, and the models of what crosses a topic."""
