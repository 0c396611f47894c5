// The CPU's one hot loop, shared by the model and the LoRA terms.

/** out[o] = sum_i w[o, i] x[i] for o < rows; w [rows, n]. */
export function matvec(out: Float32Array, w: Float32Array, x: Float32Array, rows: number, n: number, wOffset = 0): void {
  const n4 = n - (n % 4);
  for (let o = 0; o < rows; o++) {
    const r = wOffset + o * n;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i < n4; i += 4) {
      s0 += w[r + i] * x[i];
      s1 += w[r + i + 1] * x[i + 1];
      s2 += w[r + i + 2] * x[i + 2];
      s3 += w[r + i + 3] * x[i + 3];
    }
    for (let i = n4; i < n; i++) s0 += w[r + i] * x[i];
    out[o] = s0 + s1 + s2 + s3;
  }
}
