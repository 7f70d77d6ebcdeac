//! Table tests of the parser and encoder (see SPEC.md).
