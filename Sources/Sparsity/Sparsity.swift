@_exported import SparsityCore
@_exported import SparsityFormats
@_exported import SparsityIO
@_exported import SparsityKernels
@_exported import SparsityPruning
@_exported import SparsityNN
@_exported import SparsityText
