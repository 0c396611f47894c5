// The WebGPU backend: weights, KV cache and scratch live in GPU buffers; one
// token is one command buffer of compute dispatches in the order of model.ts's
// forward(). Weights are stored in f32, f16 or bf16 (kernels.ts: 16-bit is
// widened in the kernel, arithmetic stays f32). LoRA: per projection, every loaded adapter's A and
// B are concatenated once ([R, in] and [out, R]); a blend is a vector of R
// coefficients (w_i * s_i per rank row), so switching blends is one small
// buffer write per projection and no reload.
import { AppError } from '../../errors';
import type { ModelConfig } from '../config';
import { packHalf } from '../half';
import { stackFactors, TARGETS, type LoraPart, type Target } from '../lora';
import { ropeTables, type Linear, type Weights } from '../model';
import type { Backend } from './backend';
import { ATTENTION, ELEMENTWISE, embedKernel, matvecKernel, RMSNORM, ROPE, STORE_KV, type WeightFormat } from './kernels';

const S = GPUBufferUsage.STORAGE;
const CD = GPUBufferUsage.COPY_DST;

interface Dispatch {
  pipeline: GPUComputePipeline;
  bind: GPUBindGroup;
  x: number;
}

/** GPU copies of one projection's weights and its concatenated LoRA factors. */
interface GpuLinear {
  lin: Linear;
  w: GPUBuffer; // [out, inp] in the backend's weight format
  bias: GPUBuffer | null;
  parts: LoraPart[];
  rank: number; // R: sum of the parts' ranks
  catA: GPUBuffer | null; // [R, inp]
  catB: GPUBuffer | null; // [out, R]
  coef: GPUBuffer | null; // [R]
  factorA: GPUBuffer | null; // [r, inp]
  factorB: GPUBuffer | null; // [out, r]
  factorCoef: GPUBuffer | null; // [r]
  u: GPUBuffer | null; // [max(R, r)]
  mode: 'none' | 'delta' | 'factor';
  factorRank: number;
  structureChanged?: boolean;
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  /** matvec: f32 matrices (LoRA factors); matvecW and embed: the model's weights, in `weightFormat`. */
  private readonly pipes: Record<'matvec' | 'matvecW' | 'embed' | 'rmsnorm' | 'rope' | 'storeKv' | 'attention' | 'elementwise', GPUComputePipeline>;
  private readonly buf: Record<string, GPUBuffer> = {};
  private readonly lin: Record<Target, GpuLinear>[] = [];
  private readonly posUniform: GPUBuffer;
  private readonly dummy: GPUBuffer;
  private program: Dispatch[] = [];
  /** The uniform buffers the program's dispatches read: freed when a new blend structure rebuilds it. */
  private programBuffers: GPUBuffer[] = [];
  /** Which projections run which LoRA path, with which buffers: rebuild the program when it changes. */
  private structure = '';
  private head: Dispatch[] = [];
  private readonly readback: GPUBuffer;
  private lost: string | null = null;
  weightBytes = 0;

  private constructor(
    private readonly device: GPUDevice,
    private readonly cfg: ModelConfig,
    private readonly weights: Weights,
    private readonly ctx: number,
    readonly weightFormat: WeightFormat,
  ) {
    const mk = (code: string) => device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
    this.pipes = {
      matvec: mk(matvecKernel('f32')), matvecW: mk(matvecKernel(weightFormat)), embed: mk(embedKernel(weightFormat)),
      rmsnorm: mk(RMSNORM), rope: mk(ROPE), storeKv: mk(STORE_KV), attention: mk(ATTENTION), elementwise: mk(ELEMENTWISE),
    };
    this.posUniform = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | CD });
    this.dummy = this.storage(new Float32Array(4));
    this.readback = device.createBuffer({ size: cfg.vocabSize * 4, usage: GPUBufferUsage.MAP_READ | CD });
    device.lost.then((info) => (this.lost = info.message || 'the GPU device was lost'));
  }

  /**
   * Builds the backend, or throws `backend-unavailable` when this model can't run on it.
   * `format`: how the weights are stored on the GPU; a 16-bit format rounds f32 weights
   * (exact for weights that came from a file in that format).
   */
  static async create(device: GPUDevice, cfg: ModelConfig, weights: Weights, ctx: number, format: WeightFormat = 'f32'): Promise<WebGpuBackend> {
    for (const d of [cfg.dim, cfg.hiddenDim, cfg.nHeads * cfg.headDim]) {
      if (d % 4 !== 0) throw new AppError('backend-unavailable', `The WebGPU backend needs dimensions divisible by 4 (this model has ${d}).`);
    }
    const b = new WebGpuBackend(device, cfg, weights, ctx, format);
    b.allocate();
    b.syncLora();
    return b;
  }

  private storage(data: Float32Array | Uint32Array): GPUBuffer {
    const buffer = this.device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 4) * 4), usage: S | CD | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange(0, data.byteLength)).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    return buffer;
  }

  /** A model weight in the backend's format. */
  private weightData(data: Float32Array, what: string): Float32Array | Uint32Array {
    return this.weightFormat === 'f32' ? data : packHalf(data, this.weightFormat, what);
  }

  /** A GPU buffer holding a model weight (counted in weightBytes). */
  private weightStorage(data: Float32Array | Uint32Array): GPUBuffer {
    this.weightBytes += data.byteLength;
    return this.storage(data);
  }

  private write(buffer: GPUBuffer, data: Float32Array | Uint32Array): void {
    this.device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
  }

  private zeros(n: number): GPUBuffer {
    return this.device.createBuffer({ size: Math.max(16, n * 4), usage: S | CD | GPUBufferUsage.COPY_SRC });
  }

  private uniform(values: number[], floatsAt: number[] = []): GPUBuffer {
    const data = new ArrayBuffer(Math.ceil((values.length * 4) / 16) * 16);
    const u = new Uint32Array(data);
    const f = new Float32Array(data);
    values.forEach((v, i) => (floatsAt.includes(i) ? (f[i] = v) : (u[i] = v)));
    const buffer = this.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.UNIFORM | CD });
    this.device.queue.writeBuffer(buffer, 0, data);
    this.programBuffers.push(buffer);
    return buffer;
  }

  private dispatch(pipeline: GPUComputePipeline, buffers: GPUBuffer[], x: number): Dispatch {
    const bind = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
    return { pipeline, bind, x: Math.max(1, x) };
  }

  private allocate(): void {
    const c = this.cfg;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    const { cos, sin } = ropeTables(c, this.ctx);
    Object.assign(this.buf, {
      x: this.zeros(c.dim), xb: this.zeros(c.dim), xb2: this.zeros(qDim), q: this.zeros(qDim), k: this.zeros(kvDim), v: this.zeros(kvDim),
      hb: this.zeros(c.hiddenDim), hb2: this.zeros(c.hiddenDim), logits: this.zeros(c.vocabSize), att: this.zeros(c.nHeads * this.ctx),
      kc: this.zeros(c.nLayers * this.ctx * kvDim), vc: this.zeros(c.nLayers * this.ctx * kvDim), cos: this.storage(cos), sin: this.storage(sin),
      embed: this.weightStorage(this.weightData(this.weights.embed, 'The embedding')), norm: this.weightStorage(this.weights.norm),
    });
    this.buf.head = this.cfg.tiedEmbeddings ? this.buf.embed : this.weightStorage(this.weightData(this.weights.head, 'lm_head'));
    for (const [l, L] of this.weights.layers.entries()) {
      const row = {} as Record<Target, GpuLinear>;
      for (const t of TARGETS) {
        const lin = L.proj[t];
        row[t] = { lin, w: this.weightStorage(this.weightData(lin.w, `Layer ${l} ${t}`)), bias: lin.bias ? this.weightStorage(lin.bias) : null, parts: [], rank: 0, catA: null, catB: null, coef: null, factorA: null, factorB: null, factorCoef: null, u: null, mode: 'none', factorRank: 0 };
      }
      this.lin.push(row);
      this.buf[`attnNorm${l}`] = this.weightStorage(L.attnNorm);
      this.buf[`ffnNorm${l}`] = this.weightStorage(L.ffnNorm);
    }
  }

  /** y = W x (+bias), then the projection's LoRA terms under the current plan. */
  private linear(g: GpuLinear, x: GPUBuffer, y: GPUBuffer): Dispatch[] {
    const { out, inp } = g.lin;
    const ds = [this.dispatch(this.pipes.matvecW, [this.uniform([out, inp, g.bias ? 1 : 0, 0]), g.w, x, g.bias ?? this.dummy, y], Math.ceil(out / 64))];
    if (g.mode === 'none') return ds;
    const [a, b, coef, r] = g.mode === 'delta' ? [g.catA!, g.catB!, g.coef!, g.rank] : [g.factorA!, g.factorB!, g.factorCoef!, g.factorRank];
    ds.push(this.dispatch(this.pipes.matvec, [this.uniform([r, inp, 4, 0]), a, x, coef, g.u!], Math.ceil(r / 64)));
    ds.push(this.dispatch(this.pipes.matvec, [this.uniform([out, r, 2, 0]), b, g.u!, this.dummy, y], Math.ceil(out / 64)));
    return ds;
  }

  /** The dispatches of one token, built once per blend (buffers and uniforms are reused). */
  private build(): void {
    const previous = this.programBuffers;
    this.programBuffers = [];
    const c = this.cfg;
    const B = this.buf;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    const norm = (w: GPUBuffer, x: GPUBuffer, out: GPUBuffer) => this.dispatch(this.pipes.rmsnorm, [this.uniform([c.dim, c.normEps, 0, 0], [1]), x, w, out], 1);
    const ew = (op: number, n: number, x: GPUBuffer, y: GPUBuffer) => this.dispatch(this.pipes.elementwise, [this.uniform([n, op, 0, 0]), x, y], Math.ceil(n / 64));
    const prog: Dispatch[] = [this.dispatch(this.pipes.embed, [this.uniform([c.dim, 0, 0, 0]), this.posUniform, B.embed, B.x], Math.ceil(c.dim / 4 / 64))];
    this.weights.layers.forEach((L, l) => {
      const g = this.lin[l];
      const layerOffset = l * this.ctx * kvDim;
      prog.push(norm(B[`attnNorm${l}`], B.x, B.xb));
      prog.push(...this.linear(g.q_proj, B.xb, B.q), ...this.linear(g.k_proj, B.xb, B.k), ...this.linear(g.v_proj, B.xb, B.v));
      prog.push(this.dispatch(this.pipes.rope, [this.uniform([c.nHeads, c.headDim, 0, 0]), this.posUniform, B.cos, B.sin, B.q], Math.ceil((qDim / 2) / 64)));
      prog.push(this.dispatch(this.pipes.rope, [this.uniform([c.nKvHeads, c.headDim, 0, 0]), this.posUniform, B.cos, B.sin, B.k], Math.ceil((kvDim / 2) / 64)));
      prog.push(this.dispatch(this.pipes.storeKv, [this.uniform([kvDim, layerOffset, 0, 0]), this.posUniform, B.k, B.v, B.kc, B.vc], Math.ceil(kvDim / 64)));
      prog.push(this.dispatch(this.pipes.attention, [this.uniform([c.headDim, kvDim, c.nHeads / c.nKvHeads, layerOffset, this.ctx, 1 / Math.sqrt(c.headDim), 0, 0], [5]), this.posUniform, B.q, B.kc, B.vc, B.att, B.xb2], c.nHeads));
      prog.push(...this.linear(g.o_proj, B.xb2, B.xb), ew(0, c.dim, B.x, B.xb));
      prog.push(norm(B[`ffnNorm${l}`], B.x, B.xb));
      prog.push(...this.linear(g.gate_proj, B.xb, B.hb), ...this.linear(g.up_proj, B.xb, B.hb2), ew(1, c.hiddenDim, B.hb, B.hb2));
      prog.push(...this.linear(g.down_proj, B.hb, B.xb), ew(0, c.dim, B.x, B.xb));
    });
    this.program = prog;
    this.head = [norm(B.norm, B.x, B.xb), this.dispatch(this.pipes.matvecW, [this.uniform([c.vocabSize, c.dim, 0, 0]), B.head, B.xb, this.dummy, B.logits], Math.ceil(c.vocabSize / 64))];
    for (const b of previous) b.destroy(); // work already submitted keeps them until it completes
  }

  syncLora(): void {
    for (const row of this.lin) for (const t of TARGETS) this.syncLinear(row[t]);
    // A new blend of the same adapters is only coefficient writes; the dispatches stay.
    const changed = this.lin.some((row) => TARGETS.some((t) => row[t].structureChanged));
    const structure = this.lin.map((row) => TARGETS.map((t) => `${row[t].mode}:${row[t].rank}:${row[t].factorRank}`).join(',')).join(';');
    if (changed || structure !== this.structure || this.program.length === 0) this.build();
    for (const row of this.lin) for (const t of TARGETS) row[t].structureChanged = false;
    this.structure = structure;
  }

  private syncLinear(g: GpuLinear): void {
    const { out, inp, lora } = g.lin;
    if (g.parts.length !== lora.parts.length || g.parts.some((p, i) => p !== lora.parts[i])) {
      for (const b of [g.catA, g.catB, g.coef]) b?.destroy();
      g.parts = [...lora.parts];
      const { a, b, r } = stackFactors(g.parts, inp, out);
      g.rank = r;
      if (g.rank > 0) {
        [g.catA, g.catB, g.coef] = [this.storage(a), this.storage(b), this.zeros(g.rank)];
        g.u?.destroy();
        g.u = this.zeros(Math.max(g.rank, g.factorRank));
      }
      g.structureChanged = true;
    }
    const plan = lora.planned;
    g.mode = plan.kind;
    if (plan.kind === 'factor') g.factorRank = plan.r;
    if (plan.kind === 'delta') {
      const coef = new Float32Array(g.rank);
      let off = 0;
      for (const p of g.parts) {
        coef.fill(plan.coef.get(p) ?? 0, off, off + p.r);
        off += p.r;
      }
      this.write(g.coef!, coef);
    } else if (plan.kind === 'factor') {
      if (!g.factorA || g.factorCoef!.size !== Math.max(16, plan.r * 4)) {
        for (const b of [g.factorA, g.factorB, g.factorCoef]) b?.destroy();
        [g.factorA, g.factorB, g.factorCoef] = [this.zeros(plan.r * inp), this.zeros(out * plan.r), this.zeros(plan.r)];
        g.structureChanged = true;
      }
      this.write(g.factorA, plan.a);
      this.write(g.factorB!, plan.b);
      this.write(g.factorCoef!, new Float32Array(plan.r).fill(plan.scale));
      if (!g.u || g.u.size < plan.r * 4) {
        g.u = this.zeros(Math.max(plan.r, g.rank));
        g.structureChanged = true;
      }
    }
  }

  syncWeights(): void {
    this.lin.forEach((row, l) => TARGETS.forEach((t) => this.write(row[t].w, this.weightData(row[t].lin.w, `Layer ${l} ${t}`))));
  }

  async forward(token: number, pos: number, wantLogits: boolean): Promise<Float32Array | null> {
    if (this.lost) throw new AppError('gpu-error', `WebGPU stopped working (${this.lost}); reload to fall back to the CPU.`);
    const c = this.cfg;
    this.device.queue.writeBuffer(this.posUniform, 0, new Uint32Array([pos, token, 0, 0]));
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const d of wantLogits ? [...this.program, ...this.head] : this.program) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bind);
      pass.dispatchWorkgroups(d.x);
    }
    pass.end();
    if (wantLogits) enc.copyBufferToBuffer(this.buf.logits, 0, this.readback, 0, c.vocabSize * 4);
    this.device.queue.submit([enc.finish()]);
    if (!wantLogits) return null;
    await this.readback.mapAsync(GPUMapMode.READ);
    const logits = new Float32Array(this.readback.getMappedRange().slice(0));
    this.readback.unmap();
    return logits;
  }

  dispose(): void {
    for (const b of [...Object.values(this.buf), ...this.programBuffers, this.posUniform, this.dummy, this.readback]) b.destroy();
    for (const row of this.lin) for (const g of Object.values(row)) for (const b of [g.w, g.bias, g.catA, g.catB, g.coef, g.factorA, g.factorB, g.factorCoef, g.u]) b?.destroy();
  }
}
