"""What the trainers' adapters share: reading the shapes hosts pass (strings or chat messages,
golds as strings, numbers or arrays) into what Reward.score takes, and the numbers a host
takes back from a result."""


def message_text(message, where):
    """The text of one chat message: its content, a string or a list of typed parts (the text
    parts joined, as multimodal messages carry them)."""
    if not isinstance(message, dict) or "content" not in message:
        raise TypeError(f"{where}: expected a chat message (a dict with 'content'), "
                        f"got {type(message).__name__}")
    content = message["content"]
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    if content is None:  # an assistant turn that only calls tools
        return ""
    raise TypeError(f"{where}.content: expected a string or a list of parts, got {type(content).__name__}")


def completion_text(completion, where):
    """A completion: a string, or the messages a conversational host returns, of which the
    last one is the model's final turn."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return message_text(completion[-1], f"{where}[-1]") if completion else ""
    raise TypeError(f"{where}: expected a string or a list of chat messages, got {type(completion).__name__}")


def prompt_text(prompt, where, render=None):
    """The prompt as the policy saw it, as far as the host lets us know. A string is that text.
    Chat messages are rendered by `render` (a tokenizer's chat template) when given. Without it
    the only thing known about the rendered text is a final assistant message, which the
    template leaves open for the completion to continue (a prefilled "<think>\\n"): its content
    ends the prompt. Otherwise None: spec's prefilled_think (always | never) decides."""
    if prompt is None or isinstance(prompt, str):
        return prompt
    if not isinstance(prompt, list):
        raise TypeError(f"{where}: expected a string or a list of chat messages, got {type(prompt).__name__}")
    if render is not None:
        return render(prompt)
    if prompt and isinstance(prompt[-1], dict) and prompt[-1].get("role") == "assistant":
        return message_text(prompt[-1], f"{where}[-1]")
    return None


def golds(value):
    """A gold as Reward.score takes it: a string, a number, None, or a list of acceptable ones.
    Arrays that are not lists (numpy arrays in verl's parquet rows) become lists."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    return value


def filter_score(result):
    """OpenRLHF's and verl's accuracy signal: 1.0 when the answer check said correct, else 0.0;
    a reward without an answer check gives its total clamped to [0, 1]. The same rule as
    /get_reward's "scores" (AccuracyScore in rewards/server/handlers.cpp)."""
    if result.verdict is not None:
        return 1.0 if result.verdict == "correct" else 0.0
    return min(1.0, max(0.0, result.reward or 0.0))


class UnscorableError(ValueError):
    """A sample the rules could not score, where the host needs a number for every sample."""


def unscorable_message(index, result, host, setting):
    return (f"sample {index} could not be scored: {result.status} ({result.detail}). {host} needs "
            f"a number for every sample: fix the data, or set {setting} to score such samples 0")
