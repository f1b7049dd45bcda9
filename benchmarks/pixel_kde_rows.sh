#!/bin/bash
# pixel-kde rows on every published board, each from the board's truth bundle with the board's flags
# (--tuned where the board has tuning records under tuning/<board>/), then published into the board.
# Run from the repository root on a clean tree: bash benchmarks/pixel_kde_rows.sh  (about 2.5 min, 2 cores)
set -o pipefail
G=${GUDA_BENCH:-guda-bench}
run() {
    local board=$1; shift
    echo "== $board $(date +%T)"
    /usr/bin/time -f "$board wall %e s" $G run --method pixel-kde --truth-bundle "leaderboards/$board.truth.tar.gz" \
        "$@" --out "runs/kde/$board" --quiet || echo "FAILED $board"
}
rm -rf runs/kde
run digits --dataset digits --preset default --ceiling-seeds 2 --truth lds --lds-subsets 16 --lds-ceiling --tuned
run digits-specialists --dataset digits --preset default --grouping specialists --truth-seeds 2 --ceiling-seeds 4 \
    --truth lds --lds-subsets 16 --lds-ceiling --tuned
run mnist5k --dataset mnist5k --preset default --ceiling-seeds 2 --tuned
run mnist5k-specialists --dataset mnist5k --grouping specialists --truth-seeds 2 --ceiling-seeds 4 --tuned
run styled-digits --dataset styled-digits --preset default --ceiling-seeds 2 --tuned
run style-canvas --dataset style-canvas --truth-seeds 2 --ceiling-seeds 4 --tuned
run style-canvas-two-style --dataset style-canvas --query-mode two-style --truth-seeds 2 --ceiling-seeds 4 --tuned
if [ "${PUBLISH:-1}" = 1 ]; then
    for b in digits digits-specialists mnist5k mnist5k-specialists styled-digits style-canvas style-canvas-two-style; do
        $G leaderboard publish "runs/kde/$b"
    done
fi
echo "== done $(date +%T)"
