//! Autoregressive decoding with streaming: greedy or sampled (temperature, top-k,
//! top-p, repetition penalty), stop tokens from the generation config, cancellation
//! checked between layers during the prompt and before every token.

use std::time::Instant;

use candle_core::{DType, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};

use super::config::GenerationConfig;
use super::{Error, Processor, Prompt, Qwen2VL};

#[derive(Clone, Debug, PartialEq)]
pub enum Decoding {
    Greedy,
    Sample {
        temperature: f64,
        top_k: Option<usize>,
        top_p: f64,
        seed: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct GenerateParams {
    pub max_new_tokens: usize,
    pub decoding: Decoding,
    /// 1.0 disables it; > 1 discourages every token already in the context.
    pub repetition_penalty: f32,
    pub stop_tokens: Vec<u32>,
}

impl GenerateParams {
    /// The checkpoint's own defaults. Qwen2-VL ships `do_sample` with `top_k = 1`,
    /// which is greedy decoding spelt differently, so that becomes [`Decoding::Greedy`].
    pub fn from_config(gc: &GenerationConfig, max_new_tokens: usize) -> Self {
        let decoding = if !gc.do_sample || gc.top_k == Some(1) || gc.temperature <= 0.0 {
            Decoding::Greedy
        } else {
            Decoding::Sample {
                temperature: gc.temperature,
                top_k: gc.top_k.filter(|&k| k > 0),
                top_p: gc.top_p,
                seed: 0,
            }
        };
        Self {
            max_new_tokens,
            decoding,
            repetition_penalty: gc.repetition_penalty,
            stop_tokens: gc.eos_token_id.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    StopToken,
    MaxTokens,
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct Output {
    /// Generated tokens, without the stop token.
    pub tokens: Vec<u32>,
    /// Their text with special tokens kept (box markers survive for parsing).
    pub text: String,
    pub stop: StopReason,
    pub prompt_tokens: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
}

impl Output {
    pub fn prefill_tokens_per_sec(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_secs.max(1e-9)
    }
    /// Decode speed over the tokens after the first (the first comes from the prefill).
    pub fn decode_tokens_per_sec(&self) -> f64 {
        self.tokens.len().saturating_sub(1) as f64 / self.decode_secs.max(1e-9)
    }
}

/// Picks the next token from f32 logits `[vocab]`.
pub struct Sampler {
    inner: Option<LogitsProcessor>,
    penalty: f32,
}

impl Sampler {
    pub fn new(params: &GenerateParams) -> Self {
        let inner = match params.decoding {
            Decoding::Greedy => None,
            Decoding::Sample {
                temperature,
                top_k,
                top_p,
                seed,
            } => {
                let sampling = match (top_k, top_p < 1.0) {
                    (Some(k), true) => Sampling::TopKThenTopP {
                        k,
                        p: top_p,
                        temperature,
                    },
                    (Some(k), false) => Sampling::TopK { k, temperature },
                    (None, true) => Sampling::TopP {
                        p: top_p,
                        temperature,
                    },
                    (None, false) => Sampling::All { temperature },
                };
                Some(LogitsProcessor::from_sampling(seed, sampling))
            }
        };
        Self {
            inner,
            penalty: params.repetition_penalty,
        }
    }

    pub fn next(&mut self, logits: &Tensor, context: &[u32]) -> Result<u32, Error> {
        let mut logits = logits.to_dtype(DType::F32)?;
        if (self.penalty - 1.0).abs() > f32::EPSILON {
            logits =
                candle_transformers::utils::apply_repeat_penalty(&logits, self.penalty, context)?;
        }
        match &mut self.inner {
            Some(p) => Ok(p.sample(&logits)?),
            None => Ok(argmax_first(&logits.to_vec1::<f32>()?)),
        }
    }
}

/// Index of the largest value, the first one on ties (as `torch.argmax`).
pub fn argmax_first(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// Text emitted so far, kept back while the last token ends inside a UTF-8 character.
struct Streamer {
    emitted: String,
}

impl Streamer {
    fn delta(&mut self, full: String) -> Option<String> {
        if full.ends_with('\u{FFFD}') || !full.starts_with(&self.emitted) {
            return None;
        }
        let d = full[self.emitted.len()..].to_string();
        self.emitted = full;
        (!d.is_empty()).then_some(d)
    }
}

/// Generates an answer to `prompt`. `on_token` receives each token id and the text it
/// adds (possibly empty while a character is incomplete). `cancel` is polled between
/// layers of the prompt pass and before every token.
pub fn generate(
    model: &mut Qwen2VL,
    processor: &Processor,
    prompt: &Prompt,
    params: &GenerateParams,
    cancel: &dyn Fn() -> bool,
    on_token: &mut dyn FnMut(u32, &str),
) -> Result<Output, Error> {
    let t0 = Instant::now();
    let Some(mut logits) = model.prefill(prompt, cancel)? else {
        return Err(Error::Cancelled);
    };
    let prefill_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut sampler = Sampler::new(params);
    let mut context = prompt.input_ids.clone();
    let mut tokens = Vec::new();
    let mut streamer = Streamer {
        emitted: String::new(),
    };
    let mut stop = StopReason::MaxTokens;
    while tokens.len() < params.max_new_tokens {
        if cancel() {
            stop = StopReason::Cancelled;
            break;
        }
        let next = sampler.next(&logits, &context)?;
        if params.stop_tokens.contains(&next) {
            stop = StopReason::StopToken;
            break;
        }
        tokens.push(next);
        context.push(next);
        let text = processor.decode(&tokens, false)?;
        let delta = streamer.delta(text).unwrap_or_default();
        on_token(next, &delta);
        if tokens.len() == params.max_new_tokens {
            break;
        }
        logits = model.step(next)?;
    }
    let text = processor.decode(&tokens, false)?;
    Ok(Output {
        tokens,
        text,
        stop,
        prompt_tokens: prompt.input_ids.len(),
        prefill_secs,
        decode_secs: t1.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax_first(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax_first(&[f32::NEG_INFINITY, -1.0]), 1);
    }

    #[test]
    fn qwen_defaults_are_greedy() {
        let p = GenerateParams::from_config(&GenerationConfig::default(), 8);
        assert_eq!(p.decoding, Decoding::Greedy);
        assert_eq!(p.stop_tokens, vec![151645, 151643]);
    }

    #[test]
    fn streamer_holds_back_partial_characters() {
        let mut s = Streamer {
            emitted: String::new(),
        };
        assert_eq!(s.delta("ab".into()).as_deref(), Some("ab"));
        assert_eq!(s.delta("ab\u{FFFD}".into()), None);
        assert_eq!(s.delta("abé".into()).as_deref(), Some("é"));
    }
}
