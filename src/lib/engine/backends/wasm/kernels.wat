;; The CPU engine's hot loop in WebAssembly with SIMD128: ops.ts's matvec, four lanes at a time.
;; Built into kernels.wasm.ts by `npm run build:wasm` (scripts/build-wasm.ts, with the wabt package);
;; ops.ts's matvecJs is the readable reference it is tested against.
;;
;; Addresses are byte offsets into the one memory the host gives (arena.ts): the weights live there,
;; and the host copies x in and y out when they live elsewhere. The memory never grows, so the host's
;; views of it stay valid.
(module
  (import "env" "memory" (memory 1))

  ;; The sum of a vector's four lanes, paired as (0 + 1) + (2 + 3).
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; sum_i w[i] x[i] for i in [from, n) (addresses of w[0] and x[0]), one lane at a time: a row's tail.
  (func $tail (param $w i32) (param $x i32) (param $from i32) (param $n i32) (result f32)
    (local $s f32) (local $i i32)
    (local.set $i (local.get $from))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $s (f32.add (local.get $s)
          (f32.mul (f32.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2))))
                   (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $s))

  ;; out[o] = sum_i w[o, i] x[i] for o < rows; w [rows, n] row-major f32.
  ;; Four rows at a time, so that each load of x serves four rows, and two vectors of each row per
  ;; step (eight independent sums, enough to keep the adds' latency hidden); then one row at a time.
  ;; Columns past the last multiple of 8 go lane by lane ($tail).
  (func (export "matvec") (param $out i32) (param $w i32) (param $x i32) (param $rows i32) (param $n i32)
    (local $o i32) (local $rowBytes i32) (local $n8 i32) (local $end i32)
    (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $xi i32)
    (local $p i32) (local $q i32) (local $pEnd i32)
    (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128)
    (local $c0 v128) (local $c1 v128) (local $d0 v128) (local $d1 v128)
    (local $x0 v128) (local $x1 v128)
    (local.set $rowBytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $n8 (i32.and (local.get $n) (i32.const -8)))
    (local.set $end (i32.shl (local.get $n8) (i32.const 2))) ;; bytes of a row the vector loop covers
    (local.set $r0 (local.get $w))
    (block $fours_done
      (loop $fours
        (br_if $fours_done (i32.gt_s (i32.add (local.get $o) (i32.const 4)) (local.get $rows)))
        (local.set $r1 (i32.add (local.get $r0) (local.get $rowBytes)))
        (local.set $r2 (i32.add (local.get $r1) (local.get $rowBytes)))
        (local.set $r3 (i32.add (local.get $r2) (local.get $rowBytes)))
        (local.set $a0 (v128.const i64x2 0 0)) (local.set $a1 (v128.const i64x2 0 0))
        (local.set $b0 (v128.const i64x2 0 0)) (local.set $b1 (v128.const i64x2 0 0))
        (local.set $c0 (v128.const i64x2 0 0)) (local.set $c1 (v128.const i64x2 0 0))
        (local.set $d0 (v128.const i64x2 0 0)) (local.set $d1 (v128.const i64x2 0 0))
        ;; p walks row r0 and xi walks x; the other three rows are rowBytes apart
        (if (local.get $end)
          (then
            (local.set $p (local.get $r0))
            (local.set $xi (local.get $x))
            (local.set $pEnd (i32.add (local.get $r0) (local.get $end)))
            (loop $cols
              (local.set $x0 (v128.load (local.get $xi)))
              (local.set $x1 (v128.load offset=16 (local.get $xi)))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $p)) (local.get $x0))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $p)) (local.get $x1))))
              (local.set $q (i32.add (local.get $p) (local.get $rowBytes)))
              (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load (local.get $q)) (local.get $x0))))
              (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=16 (local.get $q)) (local.get $x1))))
              (local.set $q (i32.add (local.get $q) (local.get $rowBytes)))
              (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (v128.load (local.get $q)) (local.get $x0))))
              (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (v128.load offset=16 (local.get $q)) (local.get $x1))))
              (local.set $q (i32.add (local.get $q) (local.get $rowBytes)))
              (local.set $d0 (f32x4.add (local.get $d0) (f32x4.mul (v128.load (local.get $q)) (local.get $x0))))
              (local.set $d1 (f32x4.add (local.get $d1) (f32x4.mul (v128.load offset=16 (local.get $q)) (local.get $x1))))
              (local.set $p (i32.add (local.get $p) (i32.const 32)))
              (local.set $xi (i32.add (local.get $xi) (i32.const 32)))
              (br_if $cols (i32.lt_u (local.get $p) (local.get $pEnd))))))
        (f32.store (local.get $out)
          (f32.add (call $hsum (f32x4.add (local.get $a0) (local.get $a1))) (call $tail (local.get $r0) (local.get $x) (local.get $n8) (local.get $n))))
        (f32.store offset=4 (local.get $out)
          (f32.add (call $hsum (f32x4.add (local.get $b0) (local.get $b1))) (call $tail (local.get $r1) (local.get $x) (local.get $n8) (local.get $n))))
        (f32.store offset=8 (local.get $out)
          (f32.add (call $hsum (f32x4.add (local.get $c0) (local.get $c1))) (call $tail (local.get $r2) (local.get $x) (local.get $n8) (local.get $n))))
        (f32.store offset=12 (local.get $out)
          (f32.add (call $hsum (f32x4.add (local.get $d0) (local.get $d1))) (call $tail (local.get $r3) (local.get $x) (local.get $n8) (local.get $n))))
        (local.set $out (i32.add (local.get $out) (i32.const 16)))
        (local.set $r0 (i32.add (local.get $r3) (local.get $rowBytes)))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $fours)))
    ;; the last rows % 4 rows, one at a time
    (block $ones_done
      (loop $ones
        (br_if $ones_done (i32.ge_s (local.get $o) (local.get $rows)))
        (local.set $a0 (v128.const i64x2 0 0)) (local.set $a1 (v128.const i64x2 0 0))
        (if (local.get $end)
          (then
            (local.set $p (local.get $r0))
            (local.set $xi (local.get $x))
            (local.set $pEnd (i32.add (local.get $r0) (local.get $end)))
            (loop $cols
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $p)) (v128.load (local.get $xi)))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $p)) (v128.load offset=16 (local.get $xi)))))
              (local.set $p (i32.add (local.get $p) (i32.const 32)))
              (local.set $xi (i32.add (local.get $xi) (i32.const 32)))
              (br_if $cols (i32.lt_u (local.get $p) (local.get $pEnd))))))
        (f32.store (local.get $out)
          (f32.add (call $hsum (f32x4.add (local.get $a0) (local.get $a1))) (call $tail (local.get $r0) (local.get $x) (local.get $n8) (local.get $n))))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (local.set $r0 (i32.add (local.get $r0) (local.get $rowBytes)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $ones)))))
