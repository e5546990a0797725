//! Model inference for Loupe, kept free of any UI: Qwen2-VL/Migician grounding,
//! CLIP retrieval, and parsing of model answers.

pub mod answer;
pub mod clip;
pub mod qwen2vl;
pub mod reference;
