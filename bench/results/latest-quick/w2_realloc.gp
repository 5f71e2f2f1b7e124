set terminal pngcairo noenhanced size 1100,520 font 'DejaVu Sans,10'
set output "/work/main/bench/results/tmp/20261126-133454-quick/w2_realloc.png"
set title "2 realloc: realloc growth, writing each new tail - medians, lower is better"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing '?'
set key outside below center horizontal maxrows 2 Left reverse width 2
set grid ytics
set xtics nomirror
set format y '%g'
set ylabel "seconds (log scale)"
set xtics font ',9'
set logscale y
plot "/work/main/bench/results/tmp/20261126-133454-quick/w2_realloc.dat" using 2:xtic(1) title columnheader(2) lc rgb '#1f77b4', \
     '' using 3 title columnheader(3) lc rgb '#ff7f0e', \
     '' using 4 title columnheader(4) lc rgb '#2ca02c', \
     '' using 5 title columnheader(5) lc rgb '#d62728', \
     '' using 6 title columnheader(6) lc rgb '#9467bd', \
     '' using 7 title columnheader(7) lc rgb '#8c564b', \
     '' using 8 title columnheader(8) lc rgb '#e377c2', \
     '' using 9 title columnheader(9) lc rgb '#17becf'
