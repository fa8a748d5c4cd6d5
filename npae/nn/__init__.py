"""The network's math: activations, dense layers, losses, optimisers, flat parameter buffers,
and the gradient checker that tests them against central finite differences.
"""
