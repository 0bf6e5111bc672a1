import pytest
import torch
import torch.nn.functional as F

from pig_lightning.losses import symmetric_infonce


def reference(text, video, scale):
    logits = scale.exp() * text @ video.t()
    n = len(text)
    t2v = -torch.stack([logits[i].log_softmax(0)[i] for i in range(n)]).mean()
    v2t = -torch.stack([logits[:, i].log_softmax(0)[i] for i in range(n)]).mean()
    return t2v + v2t


def test_matches_the_definition_and_reductions():
    torch.manual_seed(0)
    t, v = F.normalize(torch.randn(6, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    s = torch.tensor(4.6)
    torch.testing.assert_close(symmetric_infonce(t, v, s), reference(t, v, s))
    torch.testing.assert_close(symmetric_infonce(t, v, s, "mean"), reference(t, v, s) / 2)
    with pytest.raises(ValueError, match="reduction"):
        symmetric_infonce(t, v, s, "max")


def test_computed_in_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    t, v = F.normalize(torch.randn(16, 32), dim=-1), F.normalize(torch.randn(16, 32), dim=-1)
    s = torch.tensor(4.6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = symmetric_infonce(t.bfloat16(), v.bfloat16(), s)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference(t.bfloat16().float(), v.bfloat16().float(), s))


def test_gradient_reaches_logit_scale():
    t = F.normalize(torch.randn(4, 8), dim=-1)
    s = torch.tensor(2.0, requires_grad=True)
    symmetric_infonce(t, t, s).backward()
    assert s.grad is not None and s.grad.item() < 0  # matching pairs: a sharper softmax lowers the loss
