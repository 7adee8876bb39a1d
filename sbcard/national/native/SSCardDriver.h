/*
 * SSCardDriver.h - the national social security card reader interface (社保卡读卡通用接口),
 * as implemented by sbcard's libSSCardDriver.so (Linux; no __stdcall there).
 *
 * Prototypes as the public headers and code give them (人社信息函〔2016〕38号; e.g.
 * gdgly/SI_3rdCard code/SSCARD/SSCARD/SSCARD/SSCARDCtrl.h and SSCARDCtrl.cpp). Written for
 * sbcard; see docs/national-interface.md for every function, output format and return code.
 *
 * Strings in and out are GBK, NUL-terminated. The caller allocates every output buffer: at
 * least SSCARD_MAX_OUTPUT_<function> bytes (below, NUL included; the pOutInfo sizes of the
 * Sichuan reader-interface spec's function tables: 1024*20 for iReadCard and
 * iReadCard_HSM_Step2, which return the 4 KiB photo SSSEEF08 in hex; 512 for the PIN
 * functions; 2048 for iReadDebitRecord), or SSCARD_MAX_OUTPUT_ANY for every function. The
 * library never writes more than that into one buffer. A successful result that would not
 * fit is replaced by -42 and a message naming the size; a failure's message that would not
 * fit is cut (its code stays).
 *
 * Return: 0 success; a negative code otherwise, pOutInfo then holds the Chinese message.
 * Thread-safe: calls on one reader are serialised, different readers run in parallel.
 */
#ifndef SSCARD_DRIVER_H
#define SSCARD_DRIVER_H

#ifdef __cplusplus
extern "C" {
#endif

/* BEGIN output sizes: rendered from sbcard/national/cabi.py OUTPUT_SIZES by
 * `python -m sbcard.national.build_native --header`; do not edit by hand. */
#define SSCARD_MAX_OUTPUT                          1024  /* the default: a function the spec gives no size */
#define SSCARD_MAX_OUTPUT_ANY                     20480  /* the largest: a buffer this size fits every function */
#define SSCARD_MAX_OUTPUT_iReadCardBas             1024  /* 四川读写机具规范 §1.1.1 表1 */
#define SSCARD_MAX_OUTPUT_iReadCardBas_HSM_Step1   1024  /* 四川读写机具规范 §1.2.1 表2 */
#define SSCARD_MAX_OUTPUT_iReadCardBas_HSM_Step2   1024  /* 四川读写机具规范 §1.3.1 表3 */
#define SSCARD_MAX_OUTPUT_iVerifyPIN                512  /* 四川读写机具规范 §4.1.1 表10 */
#define SSCARD_MAX_OUTPUT_iChangePIN                512  /* 四川读写机具规范 §5.1.1 表11 */
#define SSCARD_MAX_OUTPUT_iReloadPIN                512  /* 四川读写机具规范 §6.1.1 表12 */
#define SSCARD_MAX_OUTPUT_iReloadPIN_HSM_Step1      512  /* 四川读写机具规范 §6.2.1 表13 */
#define SSCARD_MAX_OUTPUT_iReloadPIN_HSM_Step2     1024  /* 四川读写机具规范 §6.3.1 表14 */
#define SSCARD_MAX_OUTPUT_iReloadPIN_HSM_Step3     1024  /* 四川读写机具规范 §6.4.1 表15 */
#define SSCARD_MAX_OUTPUT_iUnblockPIN               512  /* 四川读写机具规范 §7.1.1 表16 */
#define SSCARD_MAX_OUTPUT_iUnblockPIN_HSM_Step1     512  /* 四川读写机具规范 §7.2.1 表17 */
#define SSCARD_MAX_OUTPUT_iUnblockPIN_HSM_Step2    1024  /* 四川读写机具规范 §7.3.1 表18 */
#define SSCARD_MAX_OUTPUT_iUnblockPIN_HSM_Step3    1024  /* 四川读写机具规范 §7.4.1 表19 */
#define SSCARD_MAX_OUTPUT_iReadCard               20480  /* 四川读写机具规范 §2.1.1 表4: 1024*20 */
#define SSCARD_MAX_OUTPUT_iReadCard_HSM_Step1      1024  /* 四川读写机具规范 §2.2.1 表5 */
#define SSCARD_MAX_OUTPUT_iReadCard_HSM_Step2     20480  /* 四川读写机具规范 §2.3.1 表6: 1024*20 */
#define SSCARD_MAX_OUTPUT_iWriteCard               1024  /* 四川读写机具规范 §3.1.1 表7 */
#define SSCARD_MAX_OUTPUT_iWriteCard_HSM_Step1     1024  /* 四川读写机具规范 §3.2.1 表8 */
#define SSCARD_MAX_OUTPUT_iWriteCard_HSM_Step2     1024  /* 四川读写机具规范 §3.3.1 表9 */
#define SSCARD_MAX_OUTPUT_iGetCardType             1024  /* not in the spec: the default, both buffers */
#define SSCARD_MAX_OUTPUT_iGetReaderInfo           1024  /* not in the spec: the default, both buffers */
#define SSCARD_MAX_OUTPUT_iGetDeviceInfo           1024  /* not in the spec: the default */
#define SSCARD_MAX_OUTPUT_iDoDebit                  512  /* 四川读写机具规范 §8.1.1 表20 */
#define SSCARD_MAX_OUTPUT_iDoDebit_HSM_Step1        512  /* 四川读写机具规范 §8.2.1 表21 */
#define SSCARD_MAX_OUTPUT_iDoDebit_HSM_Step2       1024  /* 四川读写机具规范 §8.3.1 表22 */
#define SSCARD_MAX_OUTPUT_iReadDebitRecord         2048  /* 四川读写机具规范 §9.1.1 表23 */
#define SSCARD_MAX_OUTPUT_PKI_SignData             1024  /* not in the spec: the default */
#define SSCARD_MAX_OUTPUT_PKI_VerifySign           1024  /* not in the spec: the default */
/* END output sizes */

long iReadCardBas(int iType, char* pOutInfo);
long iReadCardBas_HSM_Step1(int iType, char* pOutInfo);
long iReadCardBas_HSM_Step2(char* pKey, char* pOutInfo);
long iVerifyPIN(int iType, char* pOutInfo);
long iChangePIN(int iType, char* pOutInfo);
long iReloadPIN(int iType, char* pCardInfo, char* pOutInfo);
long iReloadPIN_HSM_Step1(int iType, char* pCardInfo, char* pOutInfo);
long iReloadPIN_HSM_Step2(char* pKey, char* pOutInfo);
long iReloadPIN_HSM_Step3(char* pKey, char* pOutInfo);
long iUnblockPIN(int iType, char* pCardInfo, char* pOutInfo);
long iUnblockPIN_HSM_Step1(int iType, char* pCardInfo, char* pOutInfo);
long iUnblockPIN_HSM_Step2(char* pKey, char* pOutInfo);
long iUnblockPIN_HSM_Step3(char* pKey, char* pOutInfo);
long iReadCard(int iType, int iAuthType, char* pCardInfo, char* pFileAddr, char* pOutInfo);
long iReadCard_HSM_Step1(int iType, char* pCardInfo, char* pFileAddr, char* pOutInfo);
long iReadCard_HSM_Step2(char* pKey, char* pOutInfo);
long iWriteCard(int iType, char* pCardInfo, char* pFileAddr, char* pWriteData, char* pOutInfo);
long iWriteCard_HSM_Step1(int iType, char* pCardInfo, char* pFileAddr, char* pOutInfo);
long iWriteCard_HSM_Step2(char* pKey, char* pWriteData, char* pOutInfo);
long iGetCardType(unsigned char* pCardType, char* pOutInfo);
long iGetReaderInfo(char* pReaderSN, char* pPsamTermNo);
long iGetDeviceInfo(char* pOutInfo);
long iDoDebit(int iType, char* pCardInfo, char* pPayInfo, char* pOutInfo);
long iDoDebit_HSM_Step1(int iType, char* pCardInfo, char* pPayInfo, char* pOutInfo);
long iDoDebit_HSM_Step2(char* pKey, char* pOutInfo);
long iReadDebitRecord(int iType, char* pOutInfo);
long PKI_SignData(char* pUserPin, char* pInData, int iType, char* pOutInfo);
long PKI_VerifySign(char* pUserPin, char* pCert, char* pClearText, char* pSignature, int iType, char* pOutInfo);

#ifdef __cplusplus
}
#endif

#endif /* SSCARD_DRIVER_H */
