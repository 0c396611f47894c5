// The WebGPU backend: weights, KV cache and scratch live in GPU buffers; one
// token is one command buffer of compute dispatches in the order of model.ts's
// forward(). Weights are stored in f32, f16 or bf16 (kernels.ts: 16-bit is
// widened in the kernel, arithmetic stays f32). LoRA follows each projection's
// plan (lora.ts: only the adapters the blend uses, stacked into one low-rank
// product). The projections that read the same input (q, k, v; gate, up) share
// one A dispatch: their A rows stacked, scaled per row by the blend's
// coefficients (w_i * s_i) into u; each projection's own mat-vec then adds its
// B times its slice of u (kernels.ts, `lora`). So a blend of any number of
// adapters costs 4 dispatches per layer beyond the base model's, and a new blend
// of the same adapters is one coefficient write per group.
import { AppError } from '../../errors';
import type { ModelConfig } from '../config';
import { packHalf } from '../half';
import { TARGETS, type Target } from '../lora';
import { ropeTables, type Linear, type Weights } from '../model';
import type { Backend } from './backend';
import { ATTENTION, ELEMENTWISE, embedKernel, EW_ADD, EW_SILU_MUL, MATVEC_ADD_BIAS, MATVEC_SCALE, matvecKernel, RMSNORM, ROPE, rowsPerWorkgroup, STORE_KV, type MatvecLayout, type WeightFormat } from './kernels';

const S = GPUBufferUsage.STORAGE;
const CD = GPUBufferUsage.COPY_DST;

interface Dispatch {
  pipeline: GPUComputePipeline;
  bind: GPUBindGroup;
  x: number;
}

/** One projection: its weights, and where its planned LoRA rows sit in its group's A product. */
interface GpuLinear {
  lin: Linear;
  w: GPUBuffer; // [out, inp] in the backend's weight format
  bias: GPUBuffer | null;
  offset: number; // first row in the group's u
  rows: number; // 0: no LoRA under the current plan
  b: GPUBuffer | null; // [out, rows]: the plan's B
  /** The plan's A and B arrays last uploaded: a delta plan keeps them for every blend of the same adapters. */
  aFrom: Float32Array | null;
  bFrom: Float32Array | null;
}

/** Projections reading the same input, so sharing one stacked A product. */
interface GpuGroup {
  members: GpuLinear[];
  inp: number;
  rows: number; // the members' rows together
  a: GPUBuffer | null; // [rows, inp]
  coef: GPUBuffer | null; // [rows]
  u: GPUBuffer | null; // [rows]
  /** The members' plan kinds and ranks that a, coef and u are laid out for. */
  key: string;
}

const pad4 = (n: number): number => Math.ceil(n / 4) * 4;

/**
 * B [out, rows] from the plan's transposed bt [r, out], with zero columns from r to rows: the
 * kernel reads each output row's B by vec4 (on SwiftShader that measured faster than reading bt
 * across rows, though bt is what the CPU wants).
 */
function rowsOfB(bt: Float32Array, r: number, rows: number): Float32Array {
  const out = bt.length / r;
  const b = new Float32Array(out * rows);
  for (let k = 0; k < r; k++) for (let o = 0; o < out; o++) b[o * rows + k] = bt[k * out + o];
  return b;
}

const GROUPS: Target[][] = [['q_proj', 'k_proj', 'v_proj'], ['o_proj'], ['gate_proj', 'up_proj'], ['down_proj']];

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  /** matvec: f32 matrices (LoRA A); matvecW, matvecWLora and embed: the model's weights, in `weightFormat`. */
  private readonly pipes: Record<'matvec' | 'matvecW' | 'matvecWLora' | 'embed' | 'rmsnorm' | 'rope' | 'storeKv' | 'attention' | 'elementwise', GPUComputePipeline>;
  private readonly buf: Record<string, GPUBuffer> = {};
  private readonly lin: Record<Target, GpuLinear>[] = [];
  private readonly groups: GpuGroup[][] = [];
  private readonly posUniform: GPUBuffer;
  private readonly dummy: GPUBuffer;
  private program: Dispatch[] = [];
  /** The uniform buffers the program's dispatches read: freed when a new blend structure rebuilds it. */
  private programBuffers: GPUBuffer[] = [];
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
    readonly matvecLayout: MatvecLayout,
  ) {
    const mk = (code: string) => device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
    this.pipes = {
      matvec: mk(matvecKernel('f32', matvecLayout)),
      matvecW: mk(matvecKernel(weightFormat, matvecLayout)),
      matvecWLora: mk(matvecKernel(weightFormat, matvecLayout, true)),
      embed: mk(embedKernel(weightFormat)),
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
   * (exact for weights that came from a file in that format). `layout`: how mat-vecs spread
   * a row over invocations (kernels.ts).
   */
  static async create(device: GPUDevice, cfg: ModelConfig, weights: Weights, ctx: number, format: WeightFormat = 'f32', layout: MatvecLayout = 'row'): Promise<WebGpuBackend> {
    for (const d of [cfg.dim, cfg.hiddenDim, cfg.nHeads * cfg.headDim]) {
      if (d % 4 !== 0) throw new AppError('backend-unavailable', `The WebGPU backend needs dimensions divisible by 4 (this model has ${d}).`);
    }
    const groups = Math.ceil(cfg.vocabSize / rowsPerWorkgroup(layout));
    if (groups > device.limits.maxComputeWorkgroupsPerDimension) {
      throw new AppError('backend-unavailable', `The WebGPU backend would need ${groups} workgroups for this model's ${cfg.vocabSize}-token head, more than this GPU allows (${device.limits.maxComputeWorkgroupsPerDimension}).`);
    }
    const b = new WebGpuBackend(device, cfg, weights, ctx, format, layout);
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

  /** Writes `data` into `buffer` from float `at` on. */
  private write(buffer: GPUBuffer, data: Float32Array | Uint32Array, at = 0): void {
    this.device.queue.writeBuffer(buffer, at * 4, data as Float32Array<ArrayBuffer>);
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

  /** A mat-vec's Dims (kernels.ts). */
  private dims(rows: number, cols: number, flags: number, loraRank = 0, uOffset = 0): GPUBuffer {
    return this.uniform([rows, cols, flags, loraRank, uOffset, 0, 0, 0]);
  }

  private dispatch(pipeline: GPUComputePipeline, buffers: GPUBuffer[], x: number): Dispatch {
    const bind = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
    return { pipeline, bind, x: Math.max(1, x) };
  }

  /** Workgroups for a mat-vec of `rows` rows. */
  private rowGroups(rows: number): number {
    return Math.ceil(rows / rowsPerWorkgroup(this.matvecLayout));
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
        row[t] = { lin, w: this.weightStorage(this.weightData(lin.w, `Layer ${l} ${t}`)), bias: lin.bias ? this.weightStorage(lin.bias) : null, offset: 0, rows: 0, b: null, aFrom: null, bFrom: null };
      }
      this.lin.push(row);
      this.groups.push(GROUPS.map((ts) => ({ members: ts.map((t) => row[t]), inp: row[ts[0]].lin.inp, rows: 0, a: null, coef: null, u: null, key: '' })));
      this.buf[`attnNorm${l}`] = this.weightStorage(L.attnNorm);
      this.buf[`ffnNorm${l}`] = this.weightStorage(L.ffnNorm);
    }
  }

  /** The group's shared A product (if any LoRA is active), then each member's y = W x (+bias) (+ B u). */
  private project(grp: GpuGroup, x: GPUBuffer, ys: GPUBuffer[]): Dispatch[] {
    const ds: Dispatch[] = [];
    if (grp.rows > 0) ds.push(this.dispatch(this.pipes.matvec, [this.dims(grp.rows, grp.inp, MATVEC_SCALE), grp.a!, x, grp.coef!, grp.u!], this.rowGroups(grp.rows)));
    grp.members.forEach((g, i) => {
      const { out, inp } = g.lin;
      const flags = g.bias ? MATVEC_ADD_BIAS : 0;
      ds.push(
        g.rows === 0
          ? this.dispatch(this.pipes.matvecW, [this.dims(out, inp, flags), g.w, x, g.bias ?? this.dummy, ys[i]], this.rowGroups(out))
          : this.dispatch(this.pipes.matvecWLora, [this.dims(out, inp, flags, g.rows, g.offset), g.w, x, g.bias ?? this.dummy, ys[i], g.b!, grp.u!], this.rowGroups(out)),
      );
    });
    return ds;
  }

  /** The dispatches of one token, built once per blend structure (buffers and uniforms are reused). */
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
    this.weights.layers.forEach((_, l) => {
      const [qkv, o, gateUp, down] = this.groups[l];
      const layerOffset = l * this.ctx * kvDim;
      prog.push(norm(B[`attnNorm${l}`], B.x, B.xb));
      prog.push(...this.project(qkv, B.xb, [B.q, B.k, B.v]));
      prog.push(this.dispatch(this.pipes.rope, [this.uniform([c.nHeads, c.headDim, 0, 0]), this.posUniform, B.cos, B.sin, B.q], Math.ceil((qDim / 2) / 64)));
      prog.push(this.dispatch(this.pipes.rope, [this.uniform([c.nKvHeads, c.headDim, 0, 0]), this.posUniform, B.cos, B.sin, B.k], Math.ceil((kvDim / 2) / 64)));
      prog.push(this.dispatch(this.pipes.storeKv, [this.uniform([kvDim, layerOffset, 0, 0]), this.posUniform, B.k, B.v, B.kc, B.vc], Math.ceil(kvDim / 64)));
      prog.push(this.dispatch(this.pipes.attention, [this.uniform([c.headDim, kvDim, c.nHeads / c.nKvHeads, layerOffset, this.ctx, 1 / Math.sqrt(c.headDim), 0, 0], [5]), this.posUniform, B.q, B.kc, B.vc, B.att, B.xb2], c.nHeads));
      prog.push(...this.project(o, B.xb2, [B.xb]), ew(EW_ADD, c.dim, B.x, B.xb));
      prog.push(norm(B[`ffnNorm${l}`], B.x, B.xb));
      prog.push(...this.project(gateUp, B.xb, [B.hb, B.hb2]), ew(EW_SILU_MUL, c.hiddenDim, B.hb, B.hb2));
      prog.push(...this.project(down, B.hb, [B.xb]), ew(EW_ADD, c.dim, B.x, B.xb));
    });
    this.program = prog;
    this.head = [norm(B.norm, B.x, B.xb), this.dispatch(this.pipes.matvecW, [this.dims(c.vocabSize, c.dim, 0), B.head, B.xb, this.dummy, B.logits], this.rowGroups(c.vocabSize))];
    for (const b of previous) b.destroy(); // work already submitted keeps them until it completes
  }

  syncLora(): void {
    let rebuild = this.program.length === 0;
    for (const row of this.groups) for (const grp of row) rebuild = this.syncGroup(grp) || rebuild;
    // A new blend of the same adapters is only coefficient writes; the dispatches stay.
    if (rebuild) this.build();
  }

  /**
   * Lays out the group's A rows for the members' current plans (only the adapters the blend uses)
   * and writes this blend's coefficients; uploads factors only when the plan's arrays changed.
   * True when the dispatches must be rebuilt.
   */
  private syncGroup(grp: GpuGroup): boolean {
    const plans = grp.members.map((g) => g.lin.lora.planned);
    let rows = 0;
    grp.members.forEach((g, i) => {
      const p = plans[i];
      g.rows = p.kind === 'none' ? 0 : pad4(p.r); // the kernel reads B and u by vec4
      g.offset = rows;
      rows += g.rows;
    });
    // The ranks, not only the padded rows: a fresh layout is all zeros, so padding rows stay 0.
    const key = plans.map((p) => (p.kind === 'none' ? 'none' : `${p.kind}:${p.r}`)).join(',');
    let changed = false;
    if (key !== grp.key) {
      for (const b of [grp.a, grp.coef, grp.u]) b?.destroy();
      [grp.a, grp.coef, grp.u] = rows > 0 ? [this.zeros(rows * grp.inp), this.zeros(rows), this.zeros(rows)] : [null, null, null];
      grp.rows = rows;
      grp.key = key;
      for (const g of grp.members) g.aFrom = null; // a new layout holds no rows yet
      changed = true;
    }
    const coef = new Float32Array(rows);
    grp.members.forEach((g, i) => {
      const p = plans[i];
      if (p.kind === 'none') {
        g.b?.destroy();
        [g.b, g.aFrom, g.bFrom] = [null, null, null];
        return;
      }
      if (p.a !== g.aFrom) this.write(grp.a!, p.a, g.offset * grp.inp);
      if (p.bt !== g.bFrom) {
        const b = rowsOfB(p.bt, p.r, g.rows);
        if (!g.b || g.b.size !== Math.max(16, b.byteLength)) {
          g.b?.destroy();
          g.b = this.zeros(b.length);
          changed = true;
        }
        this.write(g.b, b);
      }
      [g.aFrom, g.bFrom] = [p.a, p.bt];
      coef.set(p.coef, g.offset);
    });
    if (rows > 0) this.write(grp.coef!, coef);
    return changed;
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
    for (const row of this.lin) for (const g of Object.values(row)) for (const b of [g.w, g.bias, g.b]) b?.destroy();
    for (const row of this.groups) for (const grp of row) for (const b of [grp.a, grp.coef, grp.u]) b?.destroy();
  }
}
