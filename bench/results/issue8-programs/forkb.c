#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
 size_t nb=atol(argv[1]), bs=atol(argv[2])<<10; int it=50;
 char **p=malloc(nb*sizeof *p);
 for(size_t i=0;i<nb;i++){p[i]=malloc(bs); if(!p[i])return 1; memset(p[i],(int)i,bs);}
 double d[50];
 for(int k=0;k<it;k++){double t0=now(); pid_t c=fork();
  if(c==0){execl("/bin/true","true",(char*)0);_exit(127);}
  int st; waitpid(c,&st,0); d[k]=now()-t0; if(!WIFEXITED(st)||WEXITSTATUS(st)){fprintf(stderr,"child bad\n");return 1;}}
 qsort(d,it,sizeof d[0],cmp);
 printf("fork_exec_median_us=%.1f min_us=%.1f\n",d[it/2]*1e6,d[0]*1e6);
 for(size_t i=0;i<nb;i++) free(p[i]);
 return 0;
}
