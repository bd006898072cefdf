#!/usr/bin/env bash
# The power-cut benchmark: does an acked message survive the machine losing power, and does the
# store open afterwards? Not part of CI (a cycle takes tens of seconds under emulation); an
# operator or a developer runs it by hand. docs/performance.md ("Power cuts") has the figures.
#
# A cycle: boot 1 of a QEMU guest (Debian's kernel, an initramfs of busybox, hearth and the
# driver; 1 vCPU, 512 MB; a fresh ext4 data disk attached with cache=none, so whatever the
# guest had not written out dies with it) starts hearth, signs up, and sends to one room per
# message size at once, reporting every ack on its second serial port. A random 1-12 s after
# the first ack the host kills QEMU with SIGKILL: the power cut. Boot 2, on the same disk,
# starts hearth again (or records that it would not start) and reads every room's history
# back; the host then checks that every acked message is there exactly once, at its seq, with
# its text.
#
#   packaging/powercut/powercut.sh setup          install the guest's parts (Debian, as root)
#   packaging/powercut/powercut.sh run [OPTIONS]  build the guest, run the cycles, print the table
#   packaging/powercut/powercut.sh table FILE     the table of a results file
#
# run options:
#   --hearth PATH     the hearth binary under test (default: target/release/hearth, built if
#                     missing)
#   --driver PATH     the driver (default: target/release/powercut-driver, built)
#   --cuts N          cycles per configuration (default 30)
#   --configs LIST    defaults (the text limit at its default), unlimited
#                     (rooms.max_text_chars = 0); default both
#   --sizes LIST      message sizes per cycle, one room each: short, ascii, cjk, emoji, frame
#                     (the largest frame the server accepts; only under `unlimited`, where the
#                     text limit allows it). Default: all that the configuration allows
#   --cut-min S, --cut-max S   the cut falls uniformly in [S, S] seconds after the first ack
#                     (default 1 and 12)
#   --jobs N          guests at once (default 1), each with a disk of its own; under emulation
#                     each takes a core
#   --accel auto|kvm|tcg       default auto: KVM if a probe boot works, else emulation
#   --out DIR         where the guest, logs and results go (default target/powercut/<time>);
#                     a run into the directory of an earlier one adds to its results
#
# Results: DIR/results.jsonl (one judged cycle per line), DIR/cycles/N-* (both boots' consoles
# and reports), and the table at the end (also in DIR/table.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() {
    echo "powercut: $*" >&2
    exit 1
}

setup() {
    [ "$(id -u)" = 0 ] || die "setup installs Debian packages: run it as root"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-system-x86 linux-image-amd64 busybox-static e2fsprogs cpio kmod xz-utils
}

# The newest Debian kernel installed, by its modules' directory.
kernel_version() {
    local version
    version=$(find /lib/modules -mindepth 1 -maxdepth 1 -name '*-amd64' -printf '%f\n' | sort -V | tail -n 1)
    [ -n "$version" ] && [ -f "/boot/vmlinuz-$version" ] ||
        die "no Debian kernel (linux-image-amd64) installed: run '$0 setup'"
    echo "$version"
}

# A module and, before it, everything it depends on (modinfo's `depends`), each once.
module_order() {
    local version=$1 module=$2 dep
    for dep in $(modinfo -k "$version" -F depends "$module" | tr ',' ' '); do
        module_order "$version" "$dep"
    done
    echo "$module"
}

# Copies a binary into the guest root as bin/NAME, with the libraries ldd names.
copy_with_libraries() {
    local binary=$1 name=$2 root=$3 lib
    install -D -m 755 "$binary" "$root/bin/$name"
    for lib in $(ldd "$binary" 2>/dev/null | grep -o '/[^ ]*'); do
        [ -e "$root$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
    done
}

# The configuration the guest's hearth runs with: bots off (they compile WebAssembly at start,
# which takes long under emulation), the data directory on the data disk, the socket rate
# limit off (the driver sends as fast as acks come back), and the text limit as named.
write_config() {
    local name=$1 file=$2 text_chars
    case "$name" in
    defaults) text_chars=4000 ;;
    unlimited) text_chars=0 ;;
    *) die "unknown configuration $name: defaults or unlimited" ;;
    esac
    cat >"$file" <<EOF
bind = "127.0.0.1:7878"
data_dir = "/data/hearth-data"
log = "info"

[rooms]
max_text_chars = $text_chars

[ws]
rate_per_sec = 0
flood_close_after = 0

[bots]
enabled = false
EOF
}

# Builds the kernel and the initramfs into $guest.
build_guest() {
    local hearth=$1 driver=$2 guest=$3 version root module config
    version=$(kernel_version)
    command -v qemu-system-x86_64 >/dev/null || die "no qemu-system-x86_64: run '$0 setup'"
    [ -x /bin/busybox ] && file -L /bin/busybox | grep -q 'statically linked' ||
        die "no static busybox (busybox-static): run '$0 setup'"
    mkdir -p "$guest"
    # Debian's vmlinuz is an xz-compressed kernel; booted as the uncompressed ELF (PVH entry)
    # it starts seconds sooner under emulation, where decompressing is slow.
    local offset kernel="/boot/vmlinuz-$version"
    offset=$(LC_ALL=C grep -abo -m 1 $'\xfd7zXZ' "/boot/vmlinuz-$version" | head -n 1 | cut -d: -f1 || true)
    if [ -n "$offset" ]; then
        tail -c +$((offset + 1)) "/boot/vmlinuz-$version" |
            xz -dcq --single-stream >"$guest/vmlinux" 2>/dev/null || true
        head -c 4 "$guest/vmlinux" | grep -q ELF && kernel="$guest/vmlinux"
    fi
    echo "$kernel" >"$guest/kernel"

    root="$guest/root"
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,data,etc,lib/modules}
    cp /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    copy_with_libraries "$hearth" hearth "$root"
    copy_with_libraries "$driver" powercut-driver "$root"
    : >"$root/lib/modules/order"
    for module in $(module_order "$version" virtio_pci; module_order "$version" virtio_blk;
        module_order "$version" crc32c_generic; module_order "$version" ext4); do
        grep -qx "$module" "$root/lib/modules/order" && continue
        local file
        file=$(modinfo -k "$version" -n "$module")
        case "$file" in
        *.ko) cp "$file" "$root/lib/modules/$module.ko" ;;
        *.ko.xz) xz -dc "$file" >"$root/lib/modules/$module.ko" ;;
        *.ko.zst) zstd -dcq "$file" >"$root/lib/modules/$module.ko" ;;
        *) die "module $module: unexpected file $file" ;;
        esac
        echo "$module" >>"$root/lib/modules/order"
    done
    for config in defaults unlimited; do
        write_config "$config" "$root/etc/hearth-$config.toml"
    done
    install -m 755 "$here/init" "$root/init"
    (cd "$root" && find . | cpio -o -H newc --quiet) >"$guest/initramfs.cpio"
    echo "guest: kernel $version ($(basename "$kernel")), modules $(tr '\n' ' ' <"$root/lib/modules/order")"
}

# Boots the guest. $1 = kernel command-line words, $2 = log prefix, $3 = data disk or "".
# Runs in the background; the caller waits for or kills $qemu_pid.
boot() {
    local words=$1 prefix=$2 disk=$3
    local drive=()
    [ -n "$disk" ] && drive=(-drive "file=$disk,if=virtio,format=raw,cache=none")
    local cpu=max
    [ "$accel" = kvm ] && cpu=host
    qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -smp 1 -m 512 \
        -display none -vga none -nodefaults -no-reboot -nic none \
        -kernel "$(cat "$guest/kernel")" -initrd "$guest/initramfs.cpio" \
        -append "console=ttyS0 quiet panic=-1 $words" \
        "${drive[@]}" \
        -serial "file:$prefix-console.log" -serial "file:$prefix-report.log" \
        >"$prefix-qemu.log" 2>&1 &
    qemu_pid=$!
}

# Waits up to $2 seconds for QEMU to exit by itself; kills it after that.
wait_qemu() {
    local limit=$1 waited=0
    while kill -0 "$qemu_pid" 2>/dev/null && [ "$waited" -lt $((limit * 10)) ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$qemu_pid" 2>/dev/null; then
        kill -9 "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
        return 1
    fi
    wait "$qemu_pid" 2>/dev/null || true
}

choose_accel() {
    case "$accel" in
    kvm | tcg) return ;;
    auto) ;;
    *) die "--accel: auto, kvm or tcg" ;;
    esac
    accel=tcg
    if [ -w /dev/kvm ]; then
        accel=kvm
        boot "pcmode=probe" "$out/probe-kvm" ""
        if wait_qemu 20 && grep -q '^probe ok' "$out/probe-kvm-report.log"; then
            echo "accel: kvm"
            return
        fi
        accel=tcg
    fi
    boot "pcmode=probe" "$out/probe-tcg" ""
    wait_qemu 120 && grep -q '^probe ok' "$out/probe-tcg-report.log" ||
        die "the guest does not boot even under emulation; see $out/probe-tcg-*.log"
    echo "accel: tcg (emulation)"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# One cycle: boot 1 until cut, boot 2 to read back; appends the judged result.
cycle() {
    local n=$1 config=$2 sizes=$3 job=$4
    local prefix="$out/cycles/$n-$config" disk="$out/data-$job.img" started cut_ms
    started=$(now)
    rm -f "$disk" "$prefix"-*
    truncate -s 1G "$disk"
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$disk"

    boot "pcmode=send pcconfig=$config pcsizes=$sizes" "$prefix-1" "$disk"
    local waited=0
    while ! grep -q '^ack ' "$prefix-1-report.log" 2>/dev/null; do
        if ! kill -0 "$qemu_pid" 2>/dev/null || [ "$waited" -gt 6000 ]; then
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    local first_ack
    first_ack=$(elapsed "$started")
    if ! grep -q '^ack ' "$prefix-1-report.log" 2>/dev/null; then
        echo "cycle $n: no ack in boot 1 (see $prefix-1-*.log)" >&2
        tail -n 3 "$prefix-1-qemu.log" "$prefix-1-report.log" >&2 || true
    fi
    cut_ms=$((cut_min * 1000 + (RANDOM * 32768 + RANDOM) % ((cut_max - cut_min) * 1000 + 1)))
    sleep "$(awk -v ms="$cut_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
    kill -9 "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true

    local token boot2_started boot2_ok=true
    token=$(awk '$1 == "token" { print $2; exit }' "$prefix-1-report.log" | tr -d '\r')
    boot2_started=$(now)
    boot "pcmode=verify pcconfig=$config${token:+ pctoken=$token}" "$prefix-2" "$disk"
    wait_qemu 900 || boot2_ok=false
    local meta
    meta=$(printf '{"cycle": %d, "config": "%s", "cut_after_s": %s, "first_ack_s": %s, "boot2_s": %s, "boot2_finished": %s, "cycle_s": %s}' \
        "$n" "$config" "$(awk -v ms="$cut_ms" 'BEGIN { printf "%.3f", ms / 1000 }')" \
        "$first_ack" "$(elapsed "$boot2_started")" "$boot2_ok" "$(elapsed "$started")")
    "$driver" compare --sent "$prefix-1-report.log" --verified "$prefix-2-report.log" \
        --meta "$meta" >"$prefix-result.json"
    flock "$out/results.jsonl" cat "$prefix-result.json" >>"$out/results.jsonl"
    "$driver" summary <"$prefix-result.json"
}

run() {
    local hearth="$repo/target/release/hearth" cuts=30 configs=defaults,unlimited sizes="" jobs=1
    driver=""
    cut_min=1 cut_max=12 accel=auto out=""
    while [ $# -gt 0 ]; do
        case "$1" in
        --hearth) hearth=$2 ;;
        --driver) driver=$2 ;;
        --cuts) cuts=$2 ;;
        --jobs) jobs=$2 ;;
        --configs) configs=$2 ;;
        --sizes) sizes=$2 ;;
        --cut-min) cut_min=$2 ;;
        --cut-max) cut_max=$2 ;;
        --accel) accel=$2 ;;
        --out) out=$2 ;;
        *) die "unknown option $1 (see the top of $0)" ;;
        esac
        shift 2
    done
    [ "$cut_max" -ge "$cut_min" ] || die "--cut-max below --cut-min"
    out=${out:-$repo/target/powercut/$(date -u +%Y%m%dT%H%M%SZ)}
    mkdir -p "$out/cycles"
    out=$(cd "$out" && pwd)
    if [ ! -x "$hearth" ]; then
        [ "$hearth" = "$repo/target/release/hearth" ] || die "no hearth binary at $hearth"
        (cd "$repo" && cargo build --release --locked --bin hearth)
    fi
    hearth=$(readlink -f "$hearth")
    if [ -z "$driver" ]; then
        driver="$repo/target/release/powercut-driver"
        (cd "$repo" && cargo build --release --locked -p powercut-driver)
    fi
    driver=$(readlink -f "$driver")
    guest="$out/guest"
    build_guest "$hearth" "$driver" "$guest"
    choose_accel
    echo "hearth under test: $hearth ($(sha256sum "$hearth" | cut -c1-16))" | tee "$out/about.txt"
    # Cycles go on numbering after those of an earlier run into the same directory.
    local n=0 config
    [ -f "$out/results.jsonl" ] && n=$(wc -l <"$out/results.jsonl")
    for config in ${configs//,/ }; do
        local config_sizes=$sizes
        if [ -z "$config_sizes" ]; then
            config_sizes=short,ascii,cjk,emoji
            [ "$config" = unlimited ] && config_sizes=$config_sizes,frame
        fi
        echo "== $config: $cuts cuts of $config_sizes, each $cut_min-$cut_max s after the first ack"
        local job
        for job in $(seq "$jobs"); do
            (
                local i
                for i in $(seq "$job" "$jobs" "$cuts"); do
                    cycle $((n + i)) "$config" "$config_sizes" "$job"
                done
            ) &
        done
        wait
        n=$((n + cuts))
    done
    "$driver" table "$out/results.jsonl" | tee "$out/table.md"
    echo "results: $out/results.jsonl"
}

case "${1:-}" in
setup) setup ;;
run) shift && run "$@" ;;
table)
    [ $# -eq 2 ] || die "usage: $0 table RESULTS.jsonl"
    driver="$repo/target/release/powercut-driver"
    [ -x "$driver" ] || (cd "$repo" && cargo build --release --locked -p powercut-driver)
    "$driver" table "$2"
    ;;
*) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' && exit 2 ;;
esac
