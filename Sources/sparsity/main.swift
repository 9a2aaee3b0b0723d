print("sparsity")
