"""Draw the graph of a small MLP's loss, as shown in the README.

    python docs/mlp_graph.py [OUTPUT]      (default: mlp_graph.png in the system's temporary folder)

The default never touches the repository: the README's picture, docs/mlp_graph.png, is only
rewritten when asked for by name (python docs/mlp_graph.py docs/mlp_graph.png).  Uses Graphviz
when it is installed, else matplotlib (pip install "clumsygrad[plot]").  The direction is the
default, "auto": this deep, narrow graph is drawn top to bottom.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

from clumsygrad.activation import relu
from clumsygrad.loss import mse_loss
from clumsygrad.tensor import Tensor, TensorType
from clumsygrad.viz import draw

rng = np.random.default_rng(0)
x, target = Tensor(rng.normal(size=(8, 3))), Tensor(rng.normal(size=(8, 2)))
W1 = Tensor(rng.normal(size=(3, 4)) * 0.5, tensor_type=TensorType.PARAMETER)
b1 = Tensor(np.zeros(4), tensor_type=TensorType.PARAMETER)
W2 = Tensor(rng.normal(size=(4, 2)) * 0.5, tensor_type=TensorType.PARAMETER)
b2 = Tensor(np.zeros(2), tensor_type=TensorType.PARAMETER)

loss = mse_loss(relu(x @ W1 + b1) @ W2 + b2, target)
loss.backward(keep_graph=True)  # keep the graph to draw it; the boxes show the gradients

output = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.gettempdir()) / "mlp_graph.png"
draw(loss, output, params={"x": x, "target": target, "W1": W1, "b1": b1, "W2": W2, "b2": b2})
print(f"wrote {output}")
