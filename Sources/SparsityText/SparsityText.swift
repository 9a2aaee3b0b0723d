// Text processing for transformer models (tokenizers).
