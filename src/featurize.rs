//! Featurization: the official `tied_featurize`.
