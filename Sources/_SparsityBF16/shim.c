// The module's only content is the inline function in include/_SparsityBF16.h.
