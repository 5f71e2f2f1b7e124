#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static long long wbytes(void){FILE*f=fopen("/proc/self/io","r");char l[256];long long v=-1;
 while(f&&fgets(l,sizeof l,f)) if(!strncmp(l,"write_bytes:",12)) v=atoll(l+12); if(f)fclose(f);return v;}
int main(void){
 const size_t B=64<<20, N=32; unsigned char *p[32]; volatile uint64_t sink=0;
 double t0=now();
 for(size_t i=0;i<N;i++){p[i]=malloc(B); if(!p[i]){perror("malloc");return 1;}}
 double t1=now();
 for(size_t i=0;i<N;i++) for(size_t j=0;j<B;j+=8) *(uint64_t*)(p[i]+j)=i*B+j;
 double t2=now();
 for(int r=0;r<2;r++) for(size_t i=0;i<N;i++) for(size_t j=0;j<B;j+=8) *(uint64_t*)(p[i]+j)^=(uint64_t)r+1;
 double t3=now();
 for(size_t i=0;i<N;i++) sink+=p[i][12345];
 for(size_t i=0;i<N;i++) free(p[i]);
 double t4=now();
 printf("malloc_ms=%.2f write_ms=%.1f rewrite2_ms=%.1f free_ms=%.2f total_ms=%.1f write_bytes=%lld\n",
   (t1-t0)*1e3,(t2-t1)*1e3,(t3-t2)*1e3,(t4-t3)*1e3,(t4-t0)*1e3,wbytes());
 return (int)(sink&0);
}
