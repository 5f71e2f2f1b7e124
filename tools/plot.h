/* `mmvec plot FILE.csv`: a PNG, drawn by gnuplot, of a recording made by `mmvec run --record`
 * (plot.c). */
#ifndef MMVEC_TOOLS_PLOT_H
#define MMVEC_TOOLS_PLOT_H

/* argv[0] is "plot"; then FILE.csv [-o OUT.png] [--title TEXT] [--script]. Returns the exit code
 * of the tool: 0, 1 for a failure (one line on stderr), 2 for a usage error. */
int mmvec_plot_main(int argc, char **argv);

#endif
