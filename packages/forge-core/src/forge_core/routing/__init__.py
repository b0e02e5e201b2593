"""The routing layer: which candidates a request gets, in which order, and trying them until one answers."""
