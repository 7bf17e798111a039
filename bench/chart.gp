# bench/chart.gp - throughput per workload per engine, from the data file
# bench/report.py writes (one row per workload/threads, one column per
# engine, "-" where an engine has no figure). Called by bench/run.sh:
#
#   gnuplot -e "datafile='build/bench-results/chart.dat'; outfile='docs/bench.png'" bench/chart.gp
#
# A log scale: the workloads span four orders of magnitude (durable writes
# at thousands per second, absent-key lookups at millions).

if (!exists("datafile")) datafile = 'build/bench-results/chart.dat'
if (!exists("outfile")) outfile = 'docs/bench.png'

set terminal pngcairo size 1400,620 font "DejaVu Sans,10" noenhanced
set output outfile
set title "Operations per second (log scale) per workload/threads, one run, same keys and threads for every engine"
set datafile missing "-"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [1000:*]
set format y "%.0s%c"
set ytics nomirror
set grid ytics
set xtics rotate by 35 right nomirror
set key top left horizontal
set linetype 1 lc rgb "#d62728"
set linetype 2 lc rgb "#1f77b4"
set linetype 3 lc rgb "#2ca02c"
set linetype 4 lc rgb "#9467bd"
set linetype 5 lc rgb "#ff7f0e"

columns = system("head -1 '" . datafile . "' | wc -w") + 0
plot for [i=2:columns] datafile using i:xtic(1) title columnheader(i)
