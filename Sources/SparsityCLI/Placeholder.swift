import Sparsity
