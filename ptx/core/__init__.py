"""The shared vocabulary: errors, frozen data and run events; imports nothing else of ptx."""
