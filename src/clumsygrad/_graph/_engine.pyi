# Type stub of a compiled module (Cython): the backward pass of the compiled graph, re-exported by
# clumsygrad._graph.native; its contract is clumsygrad._graph.pure.backward_pass's.
import numpy as np

from .native import Node

def backward_pass(root: Node, seed: np.ndarray, seed_owned: bool, keep_graph: bool) -> None: ...
