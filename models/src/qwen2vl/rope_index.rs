//! Multimodal rotary position ids (`get_rope_index` of the reference).
//!
//! Text advances all three axes together; an image block's tokens get
//! (t, row, column) of its LLM grid offset by the block start, and the text after it
//! resumes at the block's largest position + 1 — not at start + token count.

/// Position ids `[temporal, height, width]`, one entry per token, plus
/// `rope_delta = max + 1 − len`, which offsets every later decoded token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RopePositions {
    pub ids: [Vec<i64>; 3],
    pub rope_delta: i64,
}

/// `grids` are the vision grids `(t, h, w)` in patches, one per image, in prompt order;
/// `merge` is the spatial merge size. Image blocks are `<|vision_start|>` followed by
/// `<|image_pad|>` tokens. Fails when the prompt and the grids disagree.
pub fn rope_positions(
    input_ids: &[u32],
    grids: &[[usize; 3]],
    vision_start: u32,
    image_token: u32,
    merge: usize,
) -> Result<RopePositions, String> {
    let len = input_ids.len();
    let mut ids: [Vec<i64>; 3] = [
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
    ];
    let mut next: i64 = 0; // largest position so far + 1
    let mut i = 0usize;
    let mut image = 0usize;
    let push_text = |ids: &mut [Vec<i64>; 3], next: &mut i64, count: usize| {
        for k in 0..count as i64 {
            for axis in ids.iter_mut() {
                axis.push(*next + k);
            }
        }
        *next += count as i64;
    };
    while i < len {
        // The next image block starts at the first image token after a vision start.
        let block = (i..len)
            .find(|&j| input_ids[j] == image_token && j > 0 && input_ids[j - 1] == vision_start);
        let Some(start) = block else {
            push_text(&mut ids, &mut next, len - i);
            break;
        };
        push_text(&mut ids, &mut next, start - i);
        let Some(&[t, h, w]) = grids.get(image) else {
            return Err(format!(
                "the prompt has more image blocks than the {} images given",
                grids.len()
            ));
        };
        let (gh, gw) = (h / merge, w / merge);
        let count = t * gh * gw;
        if start + count > len
            || input_ids[start..start + count]
                .iter()
                .any(|&x| x != image_token)
        {
            return Err(format!(
                "image {} needs {count} <|image_pad|> tokens after <|vision_start|>",
                image + 1
            ));
        }
        let base = next;
        let mut max = base;
        for ti in 0..t {
            for hi in 0..gh {
                for wi in 0..gw {
                    let p = [base + ti as i64, base + hi as i64, base + wi as i64];
                    for (axis, v) in ids.iter_mut().zip(p) {
                        axis.push(v);
                        max = max.max(v);
                    }
                }
            }
        }
        next = max + 1;
        i = start + count;
        image += 1;
    }
    if image != grids.len() {
        return Err(format!(
            "{} images were given but the prompt has {image} image blocks",
            grids.len()
        ));
    }
    Ok(RopePositions {
        rope_delta: next - len as i64,
        ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_only_is_plain_arange() {
        let r = rope_positions(&[1, 2, 3], &[], 10, 11, 2).unwrap();
        assert_eq!(r.ids[0], vec![0, 1, 2]);
        assert_eq!(r.ids, [vec![0, 1, 2], vec![0, 1, 2], vec![0, 1, 2]]);
        assert_eq!(r.rope_delta, 0);
    }

    #[test]
    fn image_block_uses_grid_and_text_resumes_after_max() {
        // text(2) + start + 6 image tokens (grid 1×4×6 → 2×3) + end + text(1)
        let ids = [1, 2, 10, 11, 11, 11, 11, 11, 11, 12, 3];
        let r = rope_positions(&ids, &[[1, 4, 6]], 10, 11, 2).unwrap();
        // Hand computed: text 0,1, vision_start 2; image base 3: t=3, h=3..4, w=3..5.
        assert_eq!(r.ids[0], vec![0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7]);
        assert_eq!(r.ids[1], vec![0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7]);
        assert_eq!(r.ids[2], vec![0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7]);
        assert_eq!(r.rope_delta, 8 - 11);
    }

    #[test]
    fn mismatched_grids_are_errors() {
        let ids = [10, 11, 11, 12];
        assert!(rope_positions(&ids, &[[1, 4, 6]], 10, 11, 2).is_err());
        assert!(rope_positions(&ids, &[], 10, 11, 2).is_err());
        assert!(rope_positions(&[1, 2], &[[1, 2, 2]], 10, 11, 2).is_err());
    }
}
