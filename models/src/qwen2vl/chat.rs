//! The Qwen2-VL chat template, rendered without a template engine: the template is
//! fixed (system turn, user/assistant turns, images as vision blocks), so a builder is
//! exact and cannot fail at run time.

pub const DEFAULT_SYSTEM: &str = "You are a helpful assistant.";
pub const IMAGE_PAD: &str = "<|image_pad|>";

/// One piece of a message's content.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// An image; the index says which of the request's images, in order.
    Image,
    Text(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: Vec<Part>,
}

impl Message {
    pub fn user(content: Vec<Part>) -> Self {
        Self {
            role: "user".into(),
            content,
        }
    }
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: "assistant".into(),
            content: vec![Part::Text(text.into())],
        }
    }
    pub fn system(text: impl Into<String>) -> Self {
        Self {
            role: "system".into(),
            content: vec![Part::Text(text.into())],
        }
    }
}

/// The Migician prompt: one user turn holding every image, then the instruction.
pub fn grounding_messages(n_images: usize, text: &str) -> Vec<Message> {
    let mut content = vec![Part::Image; n_images];
    content.push(Part::Text(text.to_string()));
    vec![Message::user(content)]
}

/// Renders `messages` as the chat template does with `add_generation_prompt=True`;
/// `image_tokens[i]` is how many `<|image_pad|>` the i-th image expands to.
pub fn render(messages: &[Message], image_tokens: &[usize]) -> Result<String, String> {
    let mut out = String::new();
    if messages.first().is_none_or(|m| m.role != "system") {
        out.push_str("<|im_start|>system\n");
        out.push_str(DEFAULT_SYSTEM);
        out.push_str("<|im_end|>\n");
    }
    let mut image = 0;
    for m in messages {
        out.push_str("<|im_start|>");
        out.push_str(&m.role);
        out.push('\n');
        for part in &m.content {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Image => {
                    let Some(&n) = image_tokens.get(image) else {
                        return Err(format!(
                            "the messages hold more images than the {} given",
                            image_tokens.len()
                        ));
                    };
                    out.push_str("<|vision_start|>");
                    for _ in 0..n {
                        out.push_str(IMAGE_PAD);
                    }
                    out.push_str("<|vision_end|>");
                    image += 1;
                }
            }
        }
        out.push_str("<|im_end|>\n");
    }
    if image != image_tokens.len() {
        return Err(format!(
            "{} images were given but the messages hold {image}",
            image_tokens.len()
        ));
    }
    out.push_str("<|im_start|>assistant\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_reference_template() {
        let s = render(&grounding_messages(2, "Find it."), &[2, 1]).unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n\
             <|vision_start|><|image_pad|><|image_pad|><|vision_end|>\
             <|vision_start|><|image_pad|><|vision_end|>Find it.<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn multi_turn_and_custom_system() {
        let msgs = vec![
            Message::system("S"),
            Message::user(vec![Part::Text("a".into())]),
            Message::assistant("b"),
            Message::user(vec![Part::Text("c".into())]),
        ];
        assert_eq!(
            render(&msgs, &[]).unwrap(),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\na<|im_end|>\n\
             <|im_start|>assistant\nb<|im_end|>\n<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(render(&grounding_messages(1, "x"), &[]).is_err());
        assert!(render(&grounding_messages(1, "x"), &[1, 1]).is_err());
    }
}
