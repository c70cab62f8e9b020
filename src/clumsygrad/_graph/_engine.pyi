# Type stub of a compiled module (Cython): the backward pass of the compiled graph, re-exported by
# clumsygrad._graph.native; its contract is clumsygrad._graph.pure.backward_pass's.
from typing import Any, Callable, Optional

import numpy as np

from .native import Node

def backward_pass(root: Node, seed: np.ndarray, seed_owned: bool, keep_graph: bool) -> None: ...
def backward_scalar(root: Node, keep_graph: bool) -> None: ...
def set_profile_sinks(node_sink: Optional[Callable[[Any], None]], backward_sink: Optional[Callable[[Any, int], None]]) -> None: ...
