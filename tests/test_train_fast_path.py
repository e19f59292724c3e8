"""The speed changes to the training path keep its behaviour: each batch holds the rows it should, Adam is Adam."""

import torch

from lecturelib import data, train


def test_shuffled_batches_cover_every_row_once_and_keep_tensors_aligned():
    x = torch.arange(103, dtype=torch.float32).unsqueeze(1).repeat(1, 3)  # row i holds i
    y = torch.arange(103)
    batches = list(data.Batches(x, y, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(1)))
    assert len(batches) == 11 and [len(b[1]) for b in batches] == [10] * 10 + [3]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(103)) and not torch.equal(seen, y)
    for bx, by in batches:
        assert torch.equal(bx, by.float().unsqueeze(1).repeat(1, 3))


def test_shuffled_batches_follow_the_generator_permutation():
    x = torch.arange(20)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(3))
    batches = list(data.Batches(x, batch_size=8, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(torch.cat(batches), perm)


def test_unshuffled_batches_are_views_in_order():
    x = torch.arange(10.0)
    batches = list(data.Batches(x, batch_size=4, shuffle=False))
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0].data_ptr() == x.data_ptr()


def test_fit_optimizer_takes_the_same_steps_as_torch_adam():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    reference = torch.nn.Linear(5, 3)
    reference.load_state_dict(model.state_dict())
    ours = train._adam(model, lr=1e-2, weight_decay=1e-3)
    theirs = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=1e-3, foreach=False)
    for _ in range(5):
        x = torch.randn(16, 5)
        for m, opt in ((model, ours), (reference, theirs)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
