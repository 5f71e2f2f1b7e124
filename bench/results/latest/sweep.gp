set terminal pngcairo noenhanced size 1100,520 font 'DejaVu Sans,10'
set output "/work/main/bench/results/tmp/20261126-130100/sweep.png"
set title "MMVEC_THRESHOLD sweep: ratio to glibc of the same round (small objects: throughput, higher is better; others: time, lower is better)"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing '?'
set key outside below center horizontal maxrows 2 Left reverse width 2
set grid ytics
set xtics nomirror
set format y '%g'
set ylabel "ratio to glibc (log scale)"
set xtics font ',9'
set logscale y
plot "/work/main/bench/results/tmp/20261126-130100/sweep.dat" using 2:xtic(1) title columnheader(2) lc rgb '#393b79', \
     '' using 3 title columnheader(3) lc rgb '#17becf', \
     '' using 4 title columnheader(4) lc rgb '#637939', \
     '' using 5 title columnheader(5) lc rgb '#8c6d31', \
     '' using 6 title columnheader(6) lc rgb '#843c39', \
     '' using 7 title columnheader(7) lc rgb '#7b4173', \
     '' using 8 title columnheader(8) lc rgb '#e377c2'
