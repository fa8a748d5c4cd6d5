'''The statements of the exercises and the classes a student completes, as text.

``python -m npae exercise start NAME`` writes ``NAME.py``: the statement as the module's
docstring, then the stub below.  Each statement says what to write, what the checker should
show and why, in the spirit of CS231n's inline questions.
'''

STATEMENTS = {}
STUBS = {}

STATEMENTS["dense"] = """Exercise 1 — the dense layer: Y = X W + b, forward and backward.

X is (n, d_in), W is (d_in, d_out), b is (d_out,).  Given the upstream gradient dY = ∂L/∂Y
(n, d_out), backward returns dX = ∂L/∂X and stores the parameters' gradients:

    dW = Xᵀ dY        (d_in, d_out)  — the chain rule summed over the rows
    db = Σ_rows dY    (d_out,)       — the adjoint of broadcasting b over the rows
    dX = dY Wᵀ        (n, d_in)

W is square here on purpose: a transposed dW, (Xᵀ dY)ᵀ, has the right shape, so only the
numbers can tell.  The checker draws dY independently of X and reports analytic/numeric for
the worst entry.  What you should see: every row of the table "good".  If db reads as a
mean (Σ/n) you will see analytic/numeric = 1/n at every entry of b (1/5: X has 5 rows
here): a constant ratio is a missing or extra factor, never noise."""

STUBS["dense"] = '''class Dense:
    """Y = X W + b; W (4, 4), b (4,).  Complete forward and backward."""

    input_shapes = [(5, 4)]              # X: 5 rows of 4 features

    def __init__(self):
        rng = np.random.default_rng(0)
        self.params = {"W": rng.normal(scale=0.5, size=(4, 4)), "b": rng.normal(size=4)}
        self.grads = {"W": np.zeros((4, 4)), "b": np.zeros(4)}

    def forward(self, X):
        # TODO: keep what backward needs, return X W + b
        return np.zeros((X.shape[0], 4))

    def backward(self, dY):
        # TODO: set self.grads["W"] and self.grads["b"] (set them, never +=), return dX
        return np.zeros((dY.shape[0], 4))
'''

STATEMENTS["activations"] = """Exercise 2 — the activations, each with f′ taken from its output.

Write three layers with no parameters, Y = f(X) element-wise, whose backward returns
dX = dY ⊙ f′(X) with f′ written from the output y = f(x), so forward keeps only Y:

    sigmoid  y = 1 / (1 + e^{−x})     f′ = y (1 − y)
    tanh     y = tanh(x)              f′ = 1 − y²
    relu     y = max(x, 0)            f′ = [y > 0]

Check each class on its own: ``exercise check activations FILE.py:Sigmoid`` (and Tanh, Relu).
The forward values are graded at inputs as large as ±40: 1 / (1 + np.exp(-x)) overflows
for x = −800, np.exp(−np.logaddexp(0, −x)) does not.  What you should see: "good" for all
three.  Relu has a kink at 0 that random inputs almost never hit; if one does, the checker
says "ok only near a kink" for that entry alone."""

STUBS["activations"] = '''class Sigmoid:
    """y = σ(x); f′ = y (1 − y)."""

    def forward(self, X):
        return np.zeros_like(X)  # TODO

    def backward(self, dY):
        return np.zeros_like(dY)  # TODO: from the output kept by forward


class Tanh:
    """y = tanh(x); f′ = 1 − y²."""

    def forward(self, X):
        return np.zeros_like(X)  # TODO

    def backward(self, dY):
        return np.zeros_like(dY)  # TODO


class Relu:
    """y = max(x, 0); f′ = [y > 0]."""

    def forward(self, X):
        return np.zeros_like(X)  # TODO

    def backward(self, dY):
        return np.zeros_like(dY)  # TODO
'''

STATEMENTS["bce_logits"] = """Exercise 3 — binary cross-entropy from the logits, with its fused gradient.

For logits t (n, d) and targets x in [0, 1] (n, d), summed over features, averaged over rows:

    ℓ_i = −Σ_j [x log σ(t) + (1 − x) log(1 − σ(t))] = Σ_j [max(t, 0) − x t + log(1 + e^{−|t|})]
    L = (1/n) Σ_i ℓ_i,        ∂L/∂t = (σ(t) − x) / n

Write the stable right-hand form: log σ(t) of t = −800 is log 0 = −inf, while
log(1 + e^{−|t|}) never overflows.  The forward value is graded at logits up to ±800.
``loss_and_grads(logits, x)`` returns (L, dlogits); x is data, not differentiated.

What you should see: at t = 0, σ = ½ and L = d·log 2 whatever x is — the first loss of a
fresh VAE on 64 pixels is near 64 log 2 ≈ 44.4 nats.  A gradient missing the 1/n reads
analytic/numeric = n at every entry (4 here: the checker names the constant factor)."""

STUBS["bce_logits"] = '''class BCEWithLogits:
    """L = (1/n) Σ_ij [max(t, 0) − x t + log(1 + e^{−|t|})];  dL/dt = (σ(t) − x) / n."""

    input_domains = ["real", "probability"]
    fixed_inputs = ["x"]                 # data: no gradient for it

    def loss_and_grads(self, logits, x):
        loss = 0.0                       # TODO
        dlogits = np.zeros_like(logits)  # TODO
        return loss, dlogits
'''

STATEMENTS["squared_error"] = """Exercise 4 — squared error.

For a prediction x̂ (n, d) of x (n, d), summed over features, averaged over rows (npae's mse):

    L = (1/n) Σ_i Σ_j (x̂_ij − x_ij)²,        ∂L/∂x̂ = 2 (x̂ − x) / n

``loss_and_grads(prediction, x)`` returns (L, dprediction).  What you should see: "good".
Forget the 2 of the power rule and every entry reads analytic/numeric = 1/2; forget the
1/n and it reads n (4 here).  Note that npae sums over features where Keras averages: npae's value is
d times Keras' mse."""

STUBS["squared_error"] = '''class SquaredError:
    """L = (1/n) Σ (x̂ − x)²;  dL/dx̂ = 2 (x̂ − x) / n."""

    fixed_inputs = ["x"]                 # data: no gradient for it

    def loss_and_grads(self, prediction, x):
        loss = 0.0                              # TODO
        dprediction = np.zeros_like(prediction)  # TODO
        return loss, dprediction
'''

STATEMENTS["gaussian_nll"] = """Exercise 5 — the Gaussian negative log-likelihood with a learned log σ².

A decoder p(x|z) = N(x; μ, diag σ²) with one learned s = log σ² per feature, shape (d,),
shared by every row:

    L = (1/n) Σ_i ½ Σ_j [log 2π + s_j + (x_ij − μ_ij)² e^{−s_j}]
    ∂L/∂μ = (μ − x) e^{−s} / n
    ∂L/∂s_j = (1/n) Σ_i ½ [1 − (x_ij − μ_ij)² e^{−s_j}]

s was broadcast over the rows in forward, so its gradient is summed over them in backward:
the adjoint of broadcasting is a sum.  ``loss_and_grads(x, mu, logvar)`` returns
(L, (dmu, dlogvar)); x is data.  What you should see: "good"; a dlogvar of shape (n, d)
is refused with both shapes named."""

STUBS["gaussian_nll"] = '''class GaussianNLL:
    """x, mu (n, d); logvar (d,), broadcast over the rows."""

    input_shapes = [(5, 3), (5, 3), (3,)]
    fixed_inputs = ["x"]                 # data: no gradient for it

    def loss_and_grads(self, x, mu, logvar):
        loss = 0.0                       # TODO
        dmu = np.zeros_like(mu)          # TODO
        dlogvar = np.zeros_like(logvar)  # TODO: summed over the rows
        return loss, (dmu, dlogvar)
'''

STATEMENTS["kl"] = """Exercise 6 — the analytic KL divergence of the encoder from the prior.

For mu, logvar (n, k), with σ² = e^{logvar}, summed over the k latent units, averaged over rows:

    KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ²_j − 1 − log σ²_j)
    ∂KL/∂μ = μ / n,        ∂KL/∂logvar = ½ (σ² − 1) / n

``loss_and_grads(mu, logvar)`` returns (kl, (dmu, dlogvar)).  The value is graded against
npae's own: a KL written with σ where σ² belongs has a gradient that matches its own wrong
value, so finite differences alone pass it — the forward value does not.  What you should
see: KL = 0 exactly at μ = 0, logvar = 0 (the posterior is the prior), and "good"."""

STUBS["kl"] = '''class KL:
    """KL(N(mu, diag e^logvar) ‖ N(0, I)), summed over units, averaged over rows."""

    def loss_and_grads(self, mu, logvar):
        kl = 0.0                         # TODO
        dmu = np.zeros_like(mu)          # TODO
        dlogvar = np.zeros_like(logvar)  # TODO
        return kl, (dmu, dlogvar)
'''

STATEMENTS["reparameterize"] = """Exercise 7 — the reparameterised sample.

z = μ + σ ⊙ ε with σ = e^{logvar/2} and ε ~ N(0, I) drawn outside the layer: ε is an input
like the others, fixed, so the layer is deterministic and finite differences can check it.

    ∂L/∂μ = dz,        ∂L/∂logvar = ½ dz ⊙ σ ⊙ ε

``forward(mu, logvar, eps)`` returns z; ``backward(dz)`` returns (dmu, dlogvar) — no dε:
ε is data.  What you should see: "good".  Draw ε inside forward instead and the checker
stops before any finite difference: "not deterministic", with the fix."""

STUBS["reparameterize"] = '''class Reparameterize:
    """z = mu + exp(logvar / 2) * eps; eps is a fixed input."""

    fixed_inputs = ["eps"]

    def forward(self, mu, logvar, eps):
        return np.zeros_like(mu)  # TODO: keep what backward needs

    def backward(self, dz):
        return np.zeros_like(dz), np.zeros_like(dz)  # TODO: (dmu, dlogvar)
'''

STATEMENTS["iwae_weights"] = """Exercise 8 — the importance weights of the IWAE bound.

For log-weights log w_ik = log p(x_i, z_ik) − log q(z_ik | x_i), (n, K), the IWAE bound of row
i is log (1/K) Σ_k w_ik.  The loss is its negative, averaged over rows:

    L = −(1/n) Σ_i [logsumexp_k(log w_ik) − log K]
    ∂L/∂log w_ik = −w̃_ik / n,      w̃_ik = w_ik / Σ_l w_il   (a softmax over k)

The gradient weights each sample by its normalised importance weight.  Log-weights of
images are hundreds of nats below zero: exp(−800) is 0 in float64 and log 0 = −inf, so
subtract the row's maximum first (logsumexp(a) = m + log Σ e^{a − m}).  The forward value
is graded at log-weights near −800.  What you should see: "good"; each row of the
gradient sums to −1/n."""

STUBS["iwae_weights"] = '''class IWAELoss:
    """L = −(1/n) Σ_i [logsumexp_k log_w[i, k] − log K];  dL/dlog_w = −softmax(log_w) / n."""

    input_shapes = [(4, 5)]

    def loss_and_grads(self, log_w):
        loss = 0.0                      # TODO: with the max trick
        dlog_w = np.zeros_like(log_w)   # TODO
        return loss, dlog_w
'''

STATEMENTS["vae_backward"] = """Exercise 9 — the backward pass of a whole one-layer VAE.

    h = tanh(X W_enc + b_enc)                      encoder, (n, 5)
    μ = h W_mu + b_mu,   s = h W_logvar + b_logvar (n, 2), s = log σ²
    z = μ + e^{s/2} ⊙ ε                            ε (n, 2) a fixed input
    t = z W_dec + b_dec                            decoder logits, (n, 6)
    L = (1/n) Σ_i [BCE(t_i, x_i) + KL_i]           exercises 3 and 6

Backward, from the top: dt = (σ(t) − x)/n; dW_dec = zᵀ dt; dz = dt W_decᵀ; then dμ = dz +
μ/n and ds = ½ dz ⊙ σ ⊙ ε + ½(σ² − 1)/n (two paths meet: the sample and the KL); dh =
dμ W_muᵀ + ds W_logvarᵀ (two heads meet); da = dh ⊙ (1 − h²).  ``loss_and_grads(X, eps)``
returns (L, grads) with grads a dict keyed like self.params.

What you should see: with small weights the logits are near 0 and the KL near 0, so the
first loss is near d·log 2 = 6 log 2 ≈ 4.16 — far from it means the loss is wrong before
any gradient is.  Then "good" on every parameter."""

STUBS["vae_backward"] = '''class OneLayerVAE:
    """A VAE with one tanh hidden layer in the encoder and a linear decoder; 6 → 5 → 2 → 6."""

    fixed_inputs = ["X", "eps"]
    input_domains = ["probability", "real"]
    input_shapes = [(4, 6), (4, 2)]

    def __init__(self):
        rng = np.random.default_rng(0)
        shapes = {"W_enc": (6, 5), "b_enc": (5,), "W_mu": (5, 2), "b_mu": (2,),
                  "W_logvar": (5, 2), "b_logvar": (2,), "W_dec": (2, 6), "b_dec": (6,)}
        self.params = {k: rng.normal(scale=0.3, size=s) for k, s in shapes.items()}

    def loss_and_grads(self, X, eps):
        loss = 0.0                                                   # TODO: forward
        grads = {k: np.zeros_like(v) for k, v in self.params.items()}  # TODO: backward
        return loss, grads
'''
