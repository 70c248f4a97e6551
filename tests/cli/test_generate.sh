#!/usr/bin/env bash
# tests/cli/test_generate.sh <diffusiond> <source root> — `diffusiond generate` end to
# end on the sd1-tiny fixture: PNG with the A1111 parameters chunk, -n 2 file names,
# JPEG by extension, img2img and inpainting (--mask, its options and errors), and the
# exit codes (2 usage, 1 runtime).
set -euo pipefail

bin=$1
root=$2
model="$root/tests/fixtures/sd/sd1-tiny/diffusers"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect <code> <what> <command...>: the command exits with <code>
expect() {
    local want=$1 what=$2 rc=0
    shift 2
    "$@" >"$out/log" 2>&1 || rc=$?
    [[ $rc -eq $want ]] || { cat "$out/log" >&2; fail "$what: exit $rc, want $want"; }
}

expect 0 "help" "$bin" generate --help
grep -q -- "--negative-prompt" "$out/log" || fail "help lists --negative-prompt"

expect 0 "png -n 2" "$bin" generate --model "$model" --prompt "a red cube" \
    --negative-prompt "blurry" --steps 3 --cfg 5 --seed 42 --sampler "Euler a" -n 2 \
    --threads 2 --out "$out/img.png"
for i in 1 2; do
    [[ -s "$out/img-$i.png" ]] || fail "img-$i.png written"
    head -c 8 "$out/img-$i.png" | od -An -tx1 | grep -q "89 50 4e 47" || fail "img-$i.png is a PNG"
done
grep -q "timings: load" "$out/log" || fail "timings printed"
grep -q "steps/s" "$out/log" || fail "steps/s printed"
grep -aq "Seed: 43, Size: 64x64" "$out/img-2.png" || fail "image 2 records seed + 1"
grep -aq "Negative prompt: blurry" "$out/img-1.png" || fail "parameters chunk has the negative prompt"
grep -aq "Sampler: Euler a, CFG scale: 5" "$out/img-1.png" || fail "parameters chunk has sampler and cfg"

# the same seed alone gives the same file as image 2 of the batch
expect 0 "seed 43 alone" "$bin" generate --model "$model" --prompt "a red cube" \
    --negative-prompt "blurry" --steps 3 --cfg 5 --seed 43 --sampler euler_a --out "$out/one.png"
cmp -s "$out/one.png" "$out/img-2.png" || fail "seed + 1 alone equals image 2"

expect 0 "jpeg" "$bin" generate --model "$model" --prompt "x" --steps 2 --seed 1 \
    --scheduler karras --sampler dpmpp_2m --out "$out/img.JPG"
head -c 2 "$out/img.JPG" | od -An -tx1 | grep -q "ff d8" || fail "img.JPG is a JPEG"

# img2img: the size defaults to the image's (rounded down to 8), int(steps × strength)
# steps run, the PNG records the strength; the same run twice gives the same file; a
# strength that runs no step and a missing file are usage errors naming them
"$bin" generate --model "$model" --prompt "a red cube" --steps 2 --seed 5 --width 72 \
    --height 80 --out "$out/start.png" >/dev/null 2>&1 || fail "start image"
expect 0 "img2img" "$bin" generate --model "$model" --prompt "a blue cube" --init-image \
    "$out/start.png" --strength 0.5 --steps 6 --seed 9 --out "$out/i2i.png"
grep -q "step 3/3" "$out/log" || { cat "$out/log" >&2; fail "img2img runs int(6 x 0.5) = 3 steps"; }
grep -aq "Size: 72x80, Model: diffusers, Denoising strength: 0.5" "$out/i2i.png" || fail "img2img PNG text"
expect 0 "img2img again" "$bin" generate --model "$model" --prompt "a blue cube" --init-image \
    "$out/start.png" --strength 0.5 --steps 6 --seed 9 --out "$out/i2i-2.png"
cmp -s "$out/i2i.png" "$out/i2i-2.png" || fail "img2img is deterministic"
expect 2 "img2img no step" "$bin" generate --model "$model" --prompt x --init-image \
    "$out/start.png" --strength 0.1 --steps 4 --out "$out/x.png"
grep -q "strength" "$out/log" || fail "strength error names it"
expect 2 "img2img missing file" "$bin" generate --model "$model" --prompt x --init-image \
    "$out/none.png" --out "$out/x.png"
grep -q -- "--init-image" "$out/log" || fail "missing file error names --init-image"

# inpainting: a 72x80 gray mask, the right half white (repaint) — Pillow:
#   m = Image.new("L", (72, 80), 0); m.paste(255, (36, 0, 72, 80)); m.save(f, "PNG", optimize=True)
echo "iVBORw0KGgoAAAANSUhEUgAAAEgAAABQCAAAAACfA2xtAAAANElEQVR42u3MsREAAAQAMey/MwNoFMp8/ZeMQ314Kp4CgUAgEAgEAoFAIBAIBAKBQCAQaDfN2AGfeDkXwgAAAABJRU5ErkJggg==" \
    | base64 -d >"$out/mask.png"
expect 0 "inpaint" "$bin" generate --model "$model" --prompt "a blue cube" --init-image \
    "$out/start.png" --mask "$out/mask.png" --mask-blur 4 --inpaint-fill fill --steps 4 \
    --seed 9 --out "$out/inpaint.png"
grep -q "inpainting with the mask" "$out/log" || fail "inpainting announced"
grep -aq "Denoising strength: 0.75, Mask blur: 4" "$out/inpaint.png" || fail "inpaint PNG text"
expect 0 "inpaint again" "$bin" generate --model "$model" --prompt "a blue cube" --init-image \
    "$out/start.png" --mask "$out/mask.png" --mask-blur 4 --inpaint-fill fill --steps 4 \
    --seed 9 --out "$out/inpaint-2.png"
cmp -s "$out/inpaint.png" "$out/inpaint-2.png" || fail "inpainting is deterministic"
for fill in original latent-noise latent-nothing; do
    expect 0 "inpaint $fill" "$bin" generate --model "$model" --prompt "a blue cube" \
        --init-image "$out/start.png" --mask "$out/mask.png" --mask-invert --inpaint-fill \
        "$fill" --steps 4 --seed 9 --out "$out/inpaint-$fill.png"
    cmp -s "$out/inpaint.png" "$out/inpaint-$fill.png" && fail "inpaint $fill: the same file"
done
cmp -s "$out/inpaint-latent-noise.png" "$out/inpaint-latent-nothing.png" \
    && fail "latent noise and latent nothing drew the same image"
expect 2 "mask without image" "$bin" generate --model "$model" --prompt x --mask \
    "$out/mask.png" --out "$out/x.png"
grep -q -- "--mask needs --init-image" "$out/log" || fail "mask without image message"
expect 2 "mask not an image" "$bin" generate --model "$model" --prompt x --init-image \
    "$out/start.png" --mask "$out/log" --out "$out/x.png"
grep -q -- "--mask: not a PNG, JPEG or WebP image" "$out/log" || fail "bad mask names --mask"
expect 2 "missing mask" "$bin" generate --model "$model" --prompt x --init-image \
    "$out/start.png" --mask "$out/none.png" --out "$out/x.png"
grep -q -- "--mask" "$out/log" || fail "missing mask names --mask"
expect 2 "unknown fill" "$bin" generate --model "$model" --prompt x --init-image \
    "$out/start.png" --mask "$out/mask.png" --inpaint-fill blur --out "$out/x.png"

expect 2 "missing --out" "$bin" generate --model "$model" --prompt x
expect 2 "unknown option" "$bin" generate --prompt x --out "$out/x.png" --bogus
expect 2 "width 100" "$bin" generate --model "$model" --prompt x --width 100 --out "$out/x.png"
grep -q "width" "$out/log" || fail "width error names the field"
expect 2 "unknown sampler" "$bin" generate --model "$model" --prompt x --sampler nope --out "$out/x.png"
grep -q "sampler" "$out/log" || fail "sampler error names the field"
# No --model and no DIFFUSIOND_MODEL: the bundled model (models/default, 64x64) when the
# build has it, else a usage error that says --model is required.
if [[ -f "$root/models/default/model_index.json" ]]; then
    expect 0 "bundled model" env -u DIFFUSIOND_MODEL "$bin" generate --prompt "a red circle" \
        --out "$out/bundled.png"
    grep -q "64x64, 20 steps" "$out/log" || fail "bundled model: its size and diffusiond.json steps"
    [[ -s "$out/bundled.png" ]] || fail "bundled model: no image"
else
    expect 2 "no model" env -u DIFFUSIOND_MODEL "$bin" generate --prompt x --out "$out/x.png"
    grep -q -- "--model is required" "$out/log" || fail "no-model message"
fi
expect 2 "unknown device" "$bin" generate --model "$model" --prompt x --device tpu --out "$out/x.png"
expect 2 "unknown dtype" "$bin" generate --model "$model" --prompt x --dtype f8 --out "$out/x.png"
# --device cuda: an image where a GPU is, else a runtime error that says why (no
# device, or no CUDA backend in this build) — never a crash or a usage error
rc=0
"$bin" generate --model "$model" --prompt "a red cube" --steps 2 --seed 1 --device cuda \
    --dtype f32 --out "$out/cuda.png" >"$out/log" 2>&1 || rc=$?
if [[ $rc -eq 0 ]]; then
    [[ -s "$out/cuda.png" ]] || fail "cuda.png written"
else
    [[ $rc -eq 1 ]] || { cat "$out/log" >&2; fail "--device cuda: exit $rc, want 0 or 1"; }
    grep -Eq "no device|no CUDA backend" "$out/log" || { cat "$out/log" >&2; fail "--device cuda: reason"; }
fi
expect 1 "missing model" "$bin" generate --model "$out/nope" --prompt x --out "$out/x.png"
expect 1 "unwritable output" "$bin" generate --model "$model" --prompt x --steps 1 \
    --out "$out/no/such/dir/x.png"
echo "cli generate: ok"
