set terminal pngcairo noenhanced size 1100,520 font 'DejaVu Sans,10'
set output "/work/main/bench/results/tmp/20261126-133454-quick/w6_out_of_core.png"
set title "6 out of core: Out of core: write, then read and checksum, a heap 4x the cgroup limit - medians, higher is better\nno bar: glibc (OOM-killed), jemalloc (OOM-killed), mimalloc (OOM-killed), tcmalloc (OOM-killed)"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing '?'
set key outside below center horizontal maxrows 2 Left reverse width 2
set grid ytics
set xtics nomirror
set format y '%g'
set ylabel "GB/s"
set xtics font ',9'
set yrange [0:*]
plot "/work/main/bench/results/tmp/20261126-133454-quick/w6_out_of_core.dat" using 2:xtic(1) title columnheader(2) lc rgb '#9467bd', \
     '' using 3 title columnheader(3) lc rgb '#8c564b', \
     '' using 4 title columnheader(4) lc rgb '#e377c2', \
     '' using 5 title columnheader(5) lc rgb '#17becf', \
     '' using 6 title columnheader(6) lc rgb '#7f7f7f'
